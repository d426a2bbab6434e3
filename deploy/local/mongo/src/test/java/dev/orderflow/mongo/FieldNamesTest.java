package dev.orderflow.mongo;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.embedded.EmbeddedChannel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class FieldNamesTest {
    /** An order document as the projector writes it, its names made fresh as the BSON decoder makes them. */
    private static Document order(long orderNo) {
        Document item = new Document(fresh("menuId"), "m-1");
        item.put(fresh("quantity"), 2);
        Document history = new Document(fresh("status"), "PLACED");
        history.put(fresh("version"), 1L);
        Document doc = new Document(fresh("_id"), orderNo);
        doc.put(fresh("userId"), "user-" + orderNo);
        doc.put(fresh("items"), new ArrayList<>(List.of(item)));
        doc.put(fresh("history"), new ArrayList<>(List.of(history)));
        doc.put(fresh("total"), new Document(fresh("amount"), 18000L));
        return doc;
    }

    private static String fresh(String name) {
        return new String(name.toCharArray());
    }

    /** Every key instance of a document tree, depth first, in order. */
    private static List<String> keys(Object value) {
        List<String> out = new ArrayList<>();
        if (value instanceof Document d) {
            for (var e : d.entrySet()) {
                out.add(e.getKey());
                out.addAll(keys(e.getValue()));
            }
        } else if (value instanceof List<?> l) {
            for (Object o : l) {
                out.addAll(keys(o));
            }
        }
        return out;
    }

    private static void assertSameKeys(List<String> a, List<String> b) {
        assertEquals(a, b);
        for (int i = 0; i < a.size(); i++) {
            assertSame(a.get(i), b.get(i), "key " + a.get(i) + " is a copy, not the shared name");
        }
    }

    @Test
    void sharesNamesAtEveryDepthAndKeepsTheDocument() {
        FieldNames names = new FieldNames();
        Document first = names.share(order(1));
        Document second = names.share(order(2));
        assertEquals(order(1), first, "sharing changed the document");
        assertEquals(List.copyOf(order(1).keySet()), List.copyOf(first.keySet()), "sharing changed the field order");
        assertSameKeys(keys(first), keys(second));
    }

    @Test
    void stopsGrowingAtItsBound() {
        FieldNames names = new FieldNames();
        for (int i = 0; i < FieldNames.MAX_NAMES + 10; i++) {
            names.share(new Document(fresh("f" + i), i));
        }
        assertEquals(FieldNames.MAX_NAMES, names.size());
        String late = fresh("f" + (FieldNames.MAX_NAMES + 5));
        Document kept = names.share(new Document(late, 1));
        assertSame(late, kept.keySet().iterator().next(), "a name past the bound is kept as decoded");
        assertEquals(1, kept.get(late));
    }

    /** What the server keeps after inserts and updates, and after a restart replays the journal. */
    @Test
    void storedDocumentsShareTheirNames(@TempDir Path dir) throws Exception {
        String journal = dir.resolve("orders.journal").toString();
        EmbeddedChannel channel = new EmbeddedChannel();
        JournaledMemoryBackend backend = JournaledMemoryBackend.open(journal);
        for (long no = 1; no <= 3; no++) {
            Document insert = new Document("insert", "orders");
            insert.put("documents", new ArrayList<>(List.of(order(no))));
            backend.handleCommand(channel, "orderflow", "insert", insert);
        }
        Document set = new Document(fresh("$set"), new Document(fresh("status"), "ACCEPTED"));
        Document update = new Document("update", "orders");
        update.put("updates", new ArrayList<>(List.of(new Document("q", new Document("_id", 2L)).append("u", set))));
        backend.handleCommand(channel, "orderflow", "update", update);
        assertStoredShareNames(backend, 3);
        backend.close();

        JournaledMemoryBackend replayed = JournaledMemoryBackend.open(journal);
        assertStoredShareNames(replayed, 3);
        replayed.close();
    }

    private static void assertStoredShareNames(JournaledMemoryBackend backend, int want) {
        MongoCollection<?> orders = backend.resolveDatabase("orderflow").resolveCollection("orders", true);
        List<Document> stored = new ArrayList<>();
        for (Iterator<Document> it = orders.queryAll().iterator(); it.hasNext(); ) {
            stored.add(it.next());
        }
        assertEquals(want, stored.size());
        Document updated = stored.stream().filter(d -> Long.valueOf(2L).equals(d.get("_id"))).findFirst().orElseThrow();
        assertEquals("ACCEPTED", updated.get("status"));
        List<String> first = keys(stored.get(0));
        for (Document d : stored) {
            List<String> k = keys(d);
            for (String name : k) {
                int at = first.indexOf(name);
                if (at >= 0) {
                    assertSame(first.get(at), name, "stored key " + name + " is a copy, not the shared name");
                }
            }
        }
    }
}
