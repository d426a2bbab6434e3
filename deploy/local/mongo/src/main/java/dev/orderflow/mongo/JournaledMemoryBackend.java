package dev.orderflow.mongo;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.bson.BsonDecoder;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.embedded.EmbeddedChannel;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory backend made durable by a journal of its write commands.
 *
 * <p>Every write command (insert, update, delete, index and collection
 * changes) is applied on the heap and appended to the journal file before the
 * reply goes out; a restart replays the journal, then rewrites it as a
 * snapshot (the indexes and the live documents), so it does not grow with the
 * history of updates. Like {@link DurableH2Backend} a write reaches the
 * operating system before it is acknowledged (a killed server loses nothing it
 * acknowledged; it is not an fsync, so a crash of the whole machine can lose
 * the last writes).
 *
 * <p>Why not H2: the H2 backend encodes and decodes every document through its
 * MVStore, which made the projector's compare-and-set writes three to four
 * times slower than on the heap and, at 1,000 orders/s, starved the rest of a
 * two-core machine. Here the heap serves every read and write as fast as the
 * memory backend, and the journal costs one BSON encoding and one write
 * system call per write command, besides the copy of each write command with
 * shared field names ({@link FieldNames}) that keeps the heap small.
 *
 * <p>Write commands are applied and journaled under one lock, so the journal
 * holds them in the order they took effect and a replay reaches the same
 * state. Reads take no lock. A record is its BSON length (the document's own
 * first four bytes) and {db, cmd, q}; a record cut short by a kill during its
 * write was never acknowledged, so the replay drops it.
 */
final class JournaledMemoryBackend extends MemoryBackend {
    private static final int SNAPSHOT_BATCH = 1000;

    private final Path path;
    private final FieldNames fieldNames = new FieldNames();
    private final Object writeLock = new Object();
    private FileChannel journal;
    private long records;

    private JournaledMemoryBackend(Path path) {
        this.path = path;
    }

    /** Opens the journal in {@code file}, replays it and compacts it. */
    static JournaledMemoryBackend open(String file) throws IOException {
        JournaledMemoryBackend backend = new JournaledMemoryBackend(Path.of(file));
        backend.replayAndCompact();
        return backend;
    }

    @Override
    public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
        if (!WriteCommands.isWrite(command)) {
            return super.handleCommand(channel, databaseName, command, query);
        }
        synchronized (writeLock) {
            // The journal records the very command that was applied (the
            // backend may add to it, an insert's generated _id), so a
            // replay reaches the same state.
            Document shared = fieldNames.share(query);
            Document reply = super.handleCommand(channel, databaseName, command, shared);
            append(databaseName, command, shared);
            return reply;
        }
    }

    private void append(String databaseName, String command, Document query) {
        Document record = new Document();
        record.put("db", databaseName);
        record.put("cmd", command);
        record.put("q", query);
        ByteBuf buf = Unpooled.buffer();
        try {
            BsonEncoder.encodeDocument(record, buf);
            ByteBuffer bytes = buf.nioBuffer();
            while (bytes.hasRemaining()) {
                journal.write(bytes);
            }
            records++;
        } catch (IOException e) {
            // The write took effect on the heap but not in the journal: stop
            // rather than acknowledge a write a restart would lose.
            System.err.println("mongo-wire-server: cannot append to the journal " + path + ": " + e);
            Runtime.getRuntime().halt(1);
        } finally {
            buf.release();
        }
    }

    private void replayAndCompact() throws IOException {
        Channel replayChannel = new EmbeddedChannel();
        long replayed = 0;
        if (Files.exists(path)) {
            byte[] data = Files.readAllBytes(path);
            ByteBuf buf = Unpooled.wrappedBuffer(data);
            while (buf.readableBytes() >= 4) {
                int length = buf.getIntLE(buf.readerIndex());
                if (length < 5 || length > buf.readableBytes()) {
                    break; // cut short by a kill while it was written: never acknowledged
                }
                Document record = BsonDecoder.decodeBson(buf);
                super.handleCommand(replayChannel, (String) record.get("db"), (String) record.get("cmd"),
                    fieldNames.share((Document) record.get("q")));
                replayed++;
            }
        }
        Path snapshot = path.resolveSibling(path.getFileName() + ".snapshot");
        journal = FileChannel.open(snapshot, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING);
        writeSnapshot(replayChannel);
        journal.force(true);
        Files.move(snapshot, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        journal.close();
        journal = FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        System.out.println("mongo-wire-server: replayed " + replayed + " journal records from " + path
            + ", compacted to " + records);
    }

    /** Journals each collection's indexes and documents as insert commands. */
    private void writeSnapshot(Channel channel) {
        for (String databaseName : listDatabaseNames()) {
            MongoDatabase database = resolveDatabase(databaseName);
            Document listed = super.handleCommand(channel, databaseName, "listCollections", new Document("listCollections", 1));
            @SuppressWarnings("unchecked")
            List<Document> collections = (List<Document>) ((Document) listed.get("cursor")).get("firstBatch");
            for (Document c : collections) {
                String name = (String) c.get("name");
                MongoCollection<?> collection = database.resolveCollection(name, true);
                List<Document> indexes = new ArrayList<>();
                for (Index<?> index : collection.getIndexes()) {
                    if (!"_id_".equals(index.getName())) {
                        indexes.add(index.toIndexDescription());
                    }
                }
                Document create = new Document("create", name);
                append(databaseName, "create", create);
                if (!indexes.isEmpty()) {
                    Document createIndexes = new Document("createIndexes", name);
                    createIndexes.put("indexes", indexes);
                    append(databaseName, "createIndexes", createIndexes);
                }
                List<Document> batch = new ArrayList<>(SNAPSHOT_BATCH);
                for (Document d : collection.queryAll()) {
                    batch.add(d);
                    if (batch.size() == SNAPSHOT_BATCH) {
                        appendInsert(databaseName, name, batch);
                        batch = new ArrayList<>(SNAPSHOT_BATCH);
                    }
                }
                if (!batch.isEmpty()) {
                    appendInsert(databaseName, name, batch);
                }
            }
        }
    }

    private void appendInsert(String databaseName, String collection, List<Document> documents) {
        Document insert = new Document("insert", collection);
        insert.put("documents", documents);
        append(databaseName, "insert", insert);
    }

    @Override
    public void close() {
        super.close();
        synchronized (writeLock) {
            try {
                journal.close();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @Override
    public String toString() {
        return "journaled memory backend (" + path + ")";
    }
}
