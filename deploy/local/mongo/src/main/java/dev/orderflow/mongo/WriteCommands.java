package dev.orderflow.mongo;

import java.util.Locale;
import java.util.Set;

/** The commands that change data: the durable backends make each one durable before its reply. */
final class WriteCommands {
    private static final Set<String> WRITES = Set.of(
        "insert", "update", "delete", "findandmodify", "createindexes", "dropindexes",
        "create", "drop", "dropdatabase", "renamecollection");

    private WriteCommands() {
    }

    /** Whether {@code command} (any case, as the driver sends it) changes data. */
    static boolean isWrite(String command) {
        return WRITES.contains(command.toLowerCase(Locale.ROOT));
    }
}
