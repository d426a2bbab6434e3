package dev.orderflow.mongo;

import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import org.h2.mvstore.MVStore;


/**
 * An H2 backend that commits the MVStore after every write command, before the
 * reply goes out.
 *
 * <p>The stock {@code H2Backend(String)} opens the store with H2's background
 * auto-commit, which writes changes to the file about once a second: a server
 * killed in that second loses writes it had already acknowledged, and the
 * projector, having been told they succeeded, has moved its offsets past them.
 * Committing before the reply closes that window for a killed process (the
 * commit reaches the operating system's page cache; it is not an fsync, so a
 * crash of the whole machine can still lose the last writes). Concurrent
 * writes share commits: a commit with nothing new to write returns at once.
 */
final class DurableH2Backend extends H2Backend {

    private DurableH2Backend(MVStore store) {
        super(store);
    }

    /** Opens (or creates) the store in {@code fileName}. */
    static DurableH2Backend open(String fileName) {
        return new DurableH2Backend(new MVStore.Builder().fileName(fileName).open());
    }

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        Document reply = super.handleCommand(channel, databaseName, command, query);
        if (WriteCommands.isWrite(command)) {
            commit();
        }
        return reply;
    }

    @Override
    public String toString() {
        return "durable " + super.toString();
    }
}
