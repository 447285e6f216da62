// Expected Qwen2 token ids from transformers.js, offline, on the same files the C test reads.
//   cd tools/tokref && npm install --ignore-scripts && node qwen2_ref.mjs > ../../tests/data/tok/qwen2_cases.json
// (--ignore-scripts: the onnxruntime-node install script downloads binaries we do not need.)
import { readFileSync } from 'node:fs';
import { env, AutoTokenizer } from '@huggingface/transformers';

env.allowRemoteModels = false;
env.localModelPath = new URL('../../../shared/data/', import.meta.url).pathname;
const tok = await AutoTokenizer.from_pretrained('qwen2');
const casesPath = process.argv[2] ?? new URL('./cases.json', import.meta.url); // optional other strings file
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));
const out = cases.map((text) => ({ text, ids: tok.encode(text, { add_special_tokens: false }) }));
process.stdout.write('[\n' + out.map((c) => JSON.stringify(c)).join(',\n') + '\n]\n');
