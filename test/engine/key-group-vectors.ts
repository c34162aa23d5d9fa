// Test vectors for key-group assignment, produced by Apache Flink itself:
// org.apache.flink.runtime.state.KeyGroupRangeAssignment from Maven artifact
// org.apache.flink:flink-runtime:1.18.1 (run on OpenJDK 17.0.15).
//
// - stringKeyVectors: String.hashCode() of each id and
//   KeyGroupRangeAssignment.assignToKeyGroup(id, 128) / (id, 32768)
//   (= MathUtils.murmurHash(id.hashCode()) % maxParallelism).
// - ownerVectors: computeOperatorIndexForKeyGroup(maxParallelism, workers, keyGroup)
//   (= keyGroup * workers / maxParallelism).
// - rangeVectors: computeKeyGroupRangeForOperatorIndex(maxParallelism, workers, worker),
//   start/end are both inclusive.
// Non-ASCII ids are written as JS (UTF-16) escapes; Java strings are UTF-16 too,
// so hashCode() is over the same code units (the emoji is a surrogate pair).
//
// To regenerate: a pom.xml depending on org.apache.flink:flink-runtime:1.18.1, then
//   mvn -q dependency:build-classpath -Dmdep.outputFile=cp.txt
//   javac -cp "$(cat cp.txt)" Gen.java && java -cp "$(cat cp.txt):." Gen
// where Gen.java is, in short:
//   import org.apache.flink.runtime.state.*;
//   for (String k : keys)  // same ids as below, in the same order
//     print(k, k.hashCode(), KeyGroupRangeAssignment.assignToKeyGroup(k, 128),
//           KeyGroupRangeAssignment.assignToKeyGroup(k, 32768));
//   for (int p : new int[] {1, 2, 3, 4, 7}) {
//     for (int kg : new int[] {0, 1, 42, 63, 64, 85, 127})
//       print(p, kg, KeyGroupRangeAssignment.computeOperatorIndexForKeyGroup(128, p, kg));
//     for (int i = 0; i < p; i++) {
//       KeyGroupRange r = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(128, p, i);
//       print(p, i, r.getStartKeyGroup(), r.getEndKeyGroup());
//     }
//   }

export const stringKeyVectors: ReadonlyArray<{ id: string; javaHashCode: number; kg128: number; kg32768: number }> = [
  { id: "", javaHashCode: 0, kg128: 94, kg32768: 31198 },
  { id: "a", javaHashCode: 97, kg128: 81, kg32768: 19409 },
  { id: "b", javaHashCode: 98, kg128: 22, kg32768: 29846 },
  { id: "alice", javaHashCode: 92903040, kg128: 116, kg32768: 14580 },
  { id: "bob", javaHashCode: 97717, kg128: 87, kg32768: 87 },
  { id: "account-0", javaHashCode: -1827030896, kg128: 92, kg32768: 4828 },
  { id: "account-1", javaHashCode: -1827030895, kg128: 53, kg32768: 23221 },
  { id: "account-42", javaHashCode: -803382754, kg128: 26, kg32768: 27802 },
  { id: "account-4999", javaHashCode: 1043295237, kg128: 6, kg32768: 19974 },
  { id: "user:12345", javaHashCode: 812563396, kg128: 4, kg32768: 16516 },
  { id: "\u00FCn\u00EFc\u00F6d\u00E9", javaHashCode: -609221899, kg128: 15, kg32768: 24207 },
  { id: "\u65E5\u672C\u8A9E", javaHashCode: 25921943, kg128: 27, kg32768: 6683 },
  { id: "emoji-\uD83D\uDE00", javaHashCode: 1164511306, kg128: 99, kg32768: 22371 },
  { id: "a-much-longer-identifier-with-many-characters-0123456789", javaHashCode: 1413908973, kg128: 10, kg32768: 20106 },
  { id: "k0", javaHashCode: 3365, kg128: 97, kg32768: 5729 },
  { id: "k1", javaHashCode: 3366, kg128: 19, kg32768: 15379 },
  { id: "k2", javaHashCode: 3367, kg128: 82, kg32768: 7378 },
  { id: "k3", javaHashCode: 3368, kg128: 10, kg32768: 28042 },
  { id: "k4", javaHashCode: 3369, kg128: 18, kg32768: 18834 },
  { id: "k5", javaHashCode: 3370, kg128: 120, kg32768: 3448 },
  { id: "k6", javaHashCode: 3371, kg128: 7, kg32768: 9223 },
  { id: "k7", javaHashCode: 3372, kg128: 99, kg32768: 14179 },
  { id: "k8", javaHashCode: 3373, kg128: 96, kg32768: 23008 },
  { id: "k9", javaHashCode: 3374, kg128: 6, kg32768: 24966 },
  { id: "k10", javaHashCode: 104394, kg128: 21, kg32768: 5525 },
  { id: "k11", javaHashCode: 104395, kg128: 114, kg32768: 21618 },
  { id: "k12", javaHashCode: 104396, kg128: 24, kg32768: 2328 },
  { id: "k13", javaHashCode: 104397, kg128: 101, kg32768: 28517 },
  { id: "k14", javaHashCode: 104398, kg128: 60, kg32768: 11196 },
  { id: "k15", javaHashCode: 104399, kg128: 90, kg32768: 27994 },
  { id: "k16", javaHashCode: 104400, kg128: 127, kg32768: 16383 },
  { id: "k17", javaHashCode: 104401, kg128: 64, kg32768: 3520 },
  { id: "k18", javaHashCode: 104402, kg128: 1, kg32768: 25473 },
  { id: "k19", javaHashCode: 104403, kg128: 64, kg32768: 3648 },
];

export const ownerVectors: ReadonlyArray<{ maxParallelism: number; workers: number; keyGroup: number; owner: number }> = [
  { maxParallelism: 128, workers: 1, keyGroup: 0, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 1, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 42, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 63, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 64, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 85, owner: 0 },
  { maxParallelism: 128, workers: 1, keyGroup: 127, owner: 0 },
  { maxParallelism: 128, workers: 2, keyGroup: 0, owner: 0 },
  { maxParallelism: 128, workers: 2, keyGroup: 1, owner: 0 },
  { maxParallelism: 128, workers: 2, keyGroup: 42, owner: 0 },
  { maxParallelism: 128, workers: 2, keyGroup: 63, owner: 0 },
  { maxParallelism: 128, workers: 2, keyGroup: 64, owner: 1 },
  { maxParallelism: 128, workers: 2, keyGroup: 85, owner: 1 },
  { maxParallelism: 128, workers: 2, keyGroup: 127, owner: 1 },
  { maxParallelism: 128, workers: 3, keyGroup: 0, owner: 0 },
  { maxParallelism: 128, workers: 3, keyGroup: 1, owner: 0 },
  { maxParallelism: 128, workers: 3, keyGroup: 42, owner: 0 },
  { maxParallelism: 128, workers: 3, keyGroup: 63, owner: 1 },
  { maxParallelism: 128, workers: 3, keyGroup: 64, owner: 1 },
  { maxParallelism: 128, workers: 3, keyGroup: 85, owner: 1 },
  { maxParallelism: 128, workers: 3, keyGroup: 127, owner: 2 },
  { maxParallelism: 128, workers: 4, keyGroup: 0, owner: 0 },
  { maxParallelism: 128, workers: 4, keyGroup: 1, owner: 0 },
  { maxParallelism: 128, workers: 4, keyGroup: 42, owner: 1 },
  { maxParallelism: 128, workers: 4, keyGroup: 63, owner: 1 },
  { maxParallelism: 128, workers: 4, keyGroup: 64, owner: 2 },
  { maxParallelism: 128, workers: 4, keyGroup: 85, owner: 2 },
  { maxParallelism: 128, workers: 4, keyGroup: 127, owner: 3 },
  { maxParallelism: 128, workers: 7, keyGroup: 0, owner: 0 },
  { maxParallelism: 128, workers: 7, keyGroup: 1, owner: 0 },
  { maxParallelism: 128, workers: 7, keyGroup: 42, owner: 2 },
  { maxParallelism: 128, workers: 7, keyGroup: 63, owner: 3 },
  { maxParallelism: 128, workers: 7, keyGroup: 64, owner: 3 },
  { maxParallelism: 128, workers: 7, keyGroup: 85, owner: 4 },
  { maxParallelism: 128, workers: 7, keyGroup: 127, owner: 6 },
];

export const rangeVectors: ReadonlyArray<{ maxParallelism: number; workers: number; worker: number; start: number; end: number }> = [
  { maxParallelism: 128, workers: 1, worker: 0, start: 0, end: 127 },
  { maxParallelism: 128, workers: 2, worker: 0, start: 0, end: 63 },
  { maxParallelism: 128, workers: 2, worker: 1, start: 64, end: 127 },
  { maxParallelism: 128, workers: 3, worker: 0, start: 0, end: 42 },
  { maxParallelism: 128, workers: 3, worker: 1, start: 43, end: 85 },
  { maxParallelism: 128, workers: 3, worker: 2, start: 86, end: 127 },
  { maxParallelism: 128, workers: 4, worker: 0, start: 0, end: 31 },
  { maxParallelism: 128, workers: 4, worker: 1, start: 32, end: 63 },
  { maxParallelism: 128, workers: 4, worker: 2, start: 64, end: 95 },
  { maxParallelism: 128, workers: 4, worker: 3, start: 96, end: 127 },
  { maxParallelism: 128, workers: 7, worker: 0, start: 0, end: 18 },
  { maxParallelism: 128, workers: 7, worker: 1, start: 19, end: 36 },
  { maxParallelism: 128, workers: 7, worker: 2, start: 37, end: 54 },
  { maxParallelism: 128, workers: 7, worker: 3, start: 55, end: 73 },
  { maxParallelism: 128, workers: 7, worker: 4, start: 74, end: 91 },
  { maxParallelism: 128, workers: 7, worker: 5, start: 92, end: 109 },
  { maxParallelism: 128, workers: 7, worker: 6, start: 110, end: 127 },
];
