package dev.orderflow.mongo;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.util.concurrent.CountDownLatch;

/**
 * Starts mongo-java-server on a loopback port.
 *
 * <p>Arguments: {@code <host> <port> [journal|h2 <file>]}. With {@code journal}
 * (what scripts/infra passes by default) the documents live on the heap and every
 * write command is appended to the file before it is acknowledged (see
 * {@link JournaledMemoryBackend}); with {@code h2} every document is kept in an
 * H2 MVStore file, committed before each write is acknowledged (see
 * {@link DurableH2Backend}). Either way a killed or restarted server keeps every
 * write it acknowledged. Without a file the data lives on the heap only: gone on
 * exit. The server announces MongoDB 5.0 (wire version 8) because the Go driver
 * v2 refuses older servers.
 */
public final class MongoWireServer {
    private MongoWireServer() {
    }

    public static void main(String[] args) throws InterruptedException, java.io.IOException {
        if (args.length != 2 && args.length != 4) {
            System.err.println("usage: MongoWireServer <host> <port> [journal|h2 <file>]");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);

        MongoBackend backend;
        if (args.length == 2) {
            backend = new MemoryBackend();
        } else if (args[2].equals("journal")) {
            backend = JournaledMemoryBackend.open(args[3]);
        } else if (args[2].equals("h2")) {
            backend = DurableH2Backend.open(args[3]);
        } else {
            System.err.println("mongo-wire-server: the backend is journal or h2, not " + args[2]);
            System.exit(2);
            return;
        }
        backend.version(ServerVersion.MONGO_5_0);

        MongoServer server = new MongoServer(backend);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdown();
            stopped.countDown();
        }));
        try {
            server.bind(host, port);
        } catch (RuntimeException e) {
            // Netty's threads would keep a server that never bound alive.
            System.err.println("mongo-wire-server cannot listen on " + host + ":" + port + ": " + e);
            Runtime.getRuntime().halt(1);
        }
        System.out.println("mongo-wire-server listening on " + host + ":" + port + " (" + backend + ")");
        stopped.await();
    }
}
