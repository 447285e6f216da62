// ONNX Runtime (onnxruntime-node, CPU) as the model server of bench/album_python.py --ort: reads
// [3, S, S] float32 pixel frames on stdin, answers each with the embedding (float32) on stdout,
// one at a time, as a Python loop calling session.run per image would (onnxruntime has no Python
// wheel on this machine: no PyPI). Graph: image.onnx from bench/clip_peers.py prepare.
//   node bench/album_ort.mjs DIR [threads=2] [size=256]
import { createRequire } from "module";
const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");

const [dir, threadsArg, sizeArg] = process.argv.slice(2);
const threads = Number(threadsArg || 2), S = Number(sizeArg || 256), frame = 3 * S * S * 4;
const sess = await ort.InferenceSession.create(`${dir}/image.onnx`, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" });
process.stdout.write("ready\n");
let buf = Buffer.alloc(0), busy = false;
async function pump() {
  if (busy) return;
  busy = true;
  while (buf.length >= frame) {
    const px = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + frame));
    buf = buf.subarray(frame);
    const out = await sess.run({ pixels: new ort.Tensor("float32", px, [1, 3, S, S]) });
    const e = out[sess.outputNames[0]].data;
    process.stdout.write(Buffer.from(e.buffer, e.byteOffset, e.byteLength));
  }
  busy = false;
}
process.stdin.on("data", (d) => { buf = Buffer.concat([buf, d]); pump(); });
