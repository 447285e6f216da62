#!/usr/bin/env python3
"""ort_quantize.py — an int8 peer for glimpse's q8_0 towers: the S0 ONNX graphs that
clip_peers.py exports, rewritten the way onnxruntime.quantization.quantize_dynamic rewrites them
(that package is not in Debian; python3-onnx is). Weights int8 per output channel at load,
activations quantized per tensor at run time (DynamicQuantizeLinear, uint8):

  MatMul(x, W)         -> DynamicQuantizeLinear(x) -> MatMulInteger -> Cast -> Mul(x_scale * w_scale)
  Conv(x, W, b) 1x1    -> DynamicQuantizeLinear(x) -> ConvInteger   -> Cast -> Mul(...) -> Add(b)

ONNX Runtime's graph optimiser fuses the MatMul form into its DynamicQuantizeMatMul kernel (the
pattern quantize_dynamic emits). Like glimpse's q8_0, only the layers with a weight matrix are
quantized: 1x1 convolutions and Linear layers (MatMul/Gemm with a constant weight); the stem,
depthwise and other k x k convolutions stay f32. (--all-convs quantizes every group-1 conv too.)

  /usr/bin/python3 bench/ort_quantize.py DIR [--all-convs]    DIR/{image,text}.onnx -> *_int8.onnx
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def quantize(path, out, all_convs):
    m = onnx.load(path)
    g = m.graph
    init = {t.name: t for t in g.initializer}
    new_nodes, new_inits, n_q = [], [], 0
    dq_of = {}  # activation -> (q, scale, zp): one DynamicQuantizeLinear per tensor

    def dq(x):
        if x not in dq_of:
            q, s, z = x + "_q8", x + "_q8s", x + "_q8z"
            new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [q, s, z]))
            dq_of[x] = (q, s, z)
        return dq_of[x]

    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "MatMul" and n.input[1] in init and len(init[n.input[1]].dims) == 2:
            w = numpy_helper.to_array(init[n.input[1]]).astype(np.float32)  # [K, N]
            s = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0
            wq = np.clip(np.round(w / s), -127, 127).astype(np.int8)
            base = n.output[0]
            new_inits += [numpy_helper.from_array(wq, base + "_wq"),
                          numpy_helper.from_array(np.zeros(w.shape[1], np.int8), base + "_wz"),
                          numpy_helper.from_array(s.astype(np.float32), base + "_ws")]
            q, xs, xz = dq(n.input[0])
            new_nodes += [
                helper.make_node("MatMulInteger", [q, base + "_wq", xz, base + "_wz"], [base + "_i32"]),
                helper.make_node("Cast", [base + "_i32"], [base + "_f"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [xs, base + "_ws"], [base + "_sc"]),
                helper.make_node("Mul", [base + "_f", base + "_sc"], [n.output[0]]),
            ]
            n_q += 1
            continue
        if n.op_type == "Conv" and n.input[1] in init and attrs.get("group", 1) == 1:
            w = numpy_helper.to_array(init[n.input[1]]).astype(np.float32)  # [O, I, kh, kw]
            if all_convs or w.shape[2:] == (1, 1):
                O = w.shape[0]
                s = np.maximum(np.abs(w.reshape(O, -1)).max(axis=1), 1e-12) / 127.0
                # ConvInteger on ONNX Runtime's CPU takes uint8 weights: offset by 128, one zero point
                wq = (np.clip(np.round(w / s[:, None, None, None]), -127, 127) + 128).astype(np.uint8)
                base = n.output[0]
                new_inits += [numpy_helper.from_array(wq, base + "_wq"),
                              numpy_helper.from_array(np.array(128, np.uint8), base + "_wz"),
                              numpy_helper.from_array(s.reshape(1, O, 1, 1).astype(np.float32), base + "_ws")]
                q, xs, xz = dq(n.input[0])
                conv_attrs = {k: v for k, v in attrs.items() if k != "group"}
                y = base + "_y" if len(n.input) > 2 else n.output[0]
                new_nodes += [
                    helper.make_node("ConvInteger", [q, base + "_wq", xz, base + "_wz"], [base + "_i32"], **conv_attrs),
                    helper.make_node("Cast", [base + "_i32"], [base + "_f"], to=TensorProto.FLOAT),
                    helper.make_node("Mul", [xs, base + "_ws"], [base + "_sc"]),
                    helper.make_node("Mul", [base + "_f", base + "_sc"], [y]),
                ]
                if len(n.input) > 2:
                    b = numpy_helper.to_array(init[n.input[2]]).astype(np.float32).reshape(1, O, 1, 1)
                    new_inits.append(numpy_helper.from_array(b, base + "_b"))
                    new_nodes.append(helper.make_node("Add", [y, base + "_b"], [n.output[0]]))
                n_q += 1
                continue
        new_nodes.append(n)
    # the replaced f32 weights are dropped
    used = {i for nd in new_nodes for i in nd.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, out)
    print(f"{out}: {n_q} layers in int8", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--all-convs", action="store_true")
    a = ap.parse_args()
    for f in ("image", "text"):
        quantize(f"{a.dir}/{f}.onnx", f"{a.dir}/{f}_int8.onnx", a.all_convs)


if __name__ == "__main__":
    main()
