// ONNX Runtime (onnxruntime-node, CPU) timings of the S0 graphs clip_peers.py exports, for
// bench/clip_peers.sh. Intra-op threads as given, one inter-op thread, all graph optimisations.
//   node bench/clip_ort.mjs DIR [reps=5] [batch=8] [threads=2] [int8]
// int8: the graphs bench/ort_quantize.py writes (DIR/*_int8.onnx), reported as "ort-int8" with
// the cosine of their embeddings against the f32 graphs' on the same input.
// (onnxruntime-node is found through NODE_PATH: npm install --ignore-scripts onnxruntime-node
// into a directory outside the repository.)
import { createRequire } from "module";
const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

const [dir, repsArg, batchArg, threadsArg, variant] = process.argv.slice(2);
const int8 = variant === "int8", label = int8 ? "ort-int8" : "ort";
const reps = Number(repsArg || 5), batch = Number(batchArg || 8), threads = Number(threadsArg || 2);
const opts = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential",
               graphOptimizationLevel: "all" };

function median(a) { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }

async function time(what, sess, feeds, b) {
  await sess.run(feeds); // warm-up
  const ts = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    ts.push(Number(process.hrtime.bigint() - t0) * 1e-9);
  }
  const med = median(ts);
  console.log(`${label} ${what.padEnd(5)} b${String(b).padEnd(2)} median ${(med * 1e3).toFixed(2).padStart(8)} ms  ` +
              `best ${(Math.min(...ts) * 1e3).toFixed(2).padStart(8)} ms  ${(b / med).toFixed(2).padStart(7)} /s`);
}

const sfx = int8 ? "_int8" : "";
const img = await ort.InferenceSession.create(`${dir}/image${sfx}.onnx`, opts);
const txt = await ort.InferenceSession.create(`${dir}/text${sfx}.onnx`, opts);

async function cosine(what, name, feeds) { // int8 graph vs the f32 one, same input
  const ref = await ort.InferenceSession.create(`${dir}/${name}.onnx`, opts);
  const a = Object.values(await ref.run(feeds))[0].data;
  const b = Object.values(await (name === "image" ? img : txt).run(feeds))[0].data;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  console.log(`# ${label} ${what}: cosine to the f32 graph ${(ab / Math.sqrt(aa * bb)).toFixed(5)}`);
}
const V = 49408n;
for (const b of batch > 1 ? [1, batch] : [1]) {
  const px = new Float32Array(b * 3 * 256 * 256);
  for (let i = 0; i < px.length; i++) px[i] = Math.random() * 2 - 1;
  const feeds = { pixels: new ort.Tensor("float32", px, [b, 3, 256, 256]) };
  if (int8 && b === 1) await cosine("image", "image", feeds);
  await time("image", img, feeds, b);
}
for (const b of batch > 1 ? [1, batch] : [1]) {
  const ids = new BigInt64Array(b * 77);
  for (let s = 0; s < b; s++) ids.set([V - 2n, 320n, 1125n + BigInt(s), V - 1n], s * 77);
  const feeds = { tokens: new ort.Tensor("int64", ids, [b, 77]) };
  if (int8 && b === 1) await cosine("text", "text", feeds);
  await time("text", txt, feeds, b);
}
