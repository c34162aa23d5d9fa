package io.eddy.harness;

import java.nio.file.Path;
import org.apache.flink.statefun.flink.harness.Harness;

/**
 * Runs a StateFun module.yaml (remote endpoints, Kafka ingresses and egresses) on a Flink
 * MiniCluster in this JVM, with checkpoints, until the process is ended.
 *
 * <p>Usage: {@code EddyHarness <module.yaml>}; system properties: {@code eddy.parallelism}
 * (default 2), {@code eddy.checkpointIntervalMs} (default 1000), {@code eddy.bufferTimeoutMs}
 * (default 5: Flink's 100 ms would dominate request latency), {@code eddy.restartDelayMs}
 * (default 1000).
 */
public final class EddyHarness {
  private EddyHarness() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: EddyHarness <module.yaml>");
      System.exit(2);
    }
    Path module = Path.of(args[0]).toAbsolutePath();
    new Harness()
        .withFlinkJobName("eddy-statefun")
        .withParallelism(Integer.getInteger("eddy.parallelism", 2))
        .withConfiguration("statefun.remote.module-name", module.toUri().toString())
        .withConfiguration("execution.checkpointing.interval", Long.getLong("eddy.checkpointIntervalMs", 1000L) + " ms")
        .withConfiguration("execution.buffer-timeout", Long.getLong("eddy.bufferTimeoutMs", 5L) + " ms")
        // A failed task (an endpoint that stopped answering within the call timeout) restarts the
        // job from its last checkpoint, as a Flink cluster configured for production would.
        .withConfiguration("restart-strategy", "fixed-delay")
        .withConfiguration("restart-strategy.fixed-delay.attempts", "2147483647")
        .withConfiguration("restart-strategy.fixed-delay.delay", Long.getLong("eddy.restartDelayMs", 1000L) + " ms")
        .start();
  }
}
