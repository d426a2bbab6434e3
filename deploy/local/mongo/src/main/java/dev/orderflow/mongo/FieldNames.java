package dev.orderflow.mongo;

import de.bwaldvogel.mongo.bson.Document;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One String instance per field name for every document the server keeps.
 *
 * <p>The memory backend keeps each document as a map whose keys are the
 * Strings the BSON decoder made for that write, so a million order
 * documents held some 23 million copies of a few dozen field names: a
 * quarter of the heap (about 3.8 KB per document in all). Writes pass
 * through {@link #share} before they are applied, so stored documents point
 * at the shared names instead.
 *
 * <p>Only names are shared, never values: values are mostly unique (order
 * numbers, times), and sharing them would keep each one alive twice. The set
 * stops growing at {@link #MAX_NAMES}, so a client that builds field names
 * from data cannot grow it without bound; names past it are kept as decoded.
 *
 * <p>Not safe for concurrent use: the backend calls it under its write lock,
 * and during the replay at start, before it serves anyone.
 */
final class FieldNames {
    static final int MAX_NAMES = 10_000;

    private final Map<String, String> names = new HashMap<>();

    /** Returns {@code value} with every document in it keyed by shared names. */
    Object share(Object value) {
        if (value instanceof Document document) {
            Document shared = new Document();
            for (Map.Entry<String, Object> e : document.entrySet()) {
                shared.put(name(e.getKey()), share(e.getValue()));
            }
            return shared;
        }
        if (value instanceof List<?> list) {
            List<Object> shared = new ArrayList<>(list.size());
            for (Object element : list) {
                shared.add(share(element));
            }
            return shared;
        }
        return value;
    }

    /** Returns {@code document} keyed by shared names, at every depth. */
    Document share(Document document) {
        return (Document) share((Object) document);
    }

    private String name(String name) {
        String shared = names.get(name);
        if (shared != null) {
            return shared;
        }
        if (names.size() >= MAX_NAMES) {
            return name;
        }
        names.put(name, name);
        return name;
    }

    /** How many names are shared (for tests). */
    int size() {
        return names.size();
    }
}
