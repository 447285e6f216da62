// Tokenise the golden prompts with transformers.js (the reference Qwen2
// tokenizer), reading the real vocabulary files in /work/shared/data/qwen2.
// Mirrors llava.mm_utils.tokenizer_image_token: the prompt is split on the
// literal "<image>", each chunk is tokenised on its own (no BOS, Qwen2 has
// none), and the chunks are joined with the sentinel -200.
//
//   cd /tmp/tokjs && npm install @huggingface/transformers   (once)
//   NODE_PATH=/tmp/tokjs/node_modules node tokenize_prompts.mjs prompts.json out.json
// prompts.json: {"prompts": ["Describe the image.", ...]}
import { createRequire } from 'module';
import fs from 'fs';
const require = createRequire(process.env.TOKJS_DIR ? process.env.TOKJS_DIR + '/' : '/tmp/tokjs/');
const { AutoTokenizer, env } = require('@huggingface/transformers');

env.allowRemoteModels = false;
env.localModelPath = process.env.QWEN2_PARENT || '/work/shared/data/';
const tok = await AutoTokenizer.from_pretrained(process.env.QWEN2_NAME || 'qwen2');

const SYSTEM = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n';
const build = (t) => SYSTEM + '<|im_start|>user\n<image>\n' + t + '<|im_end|>\n<|im_start|>assistant\n';

const inp = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = { tokenizer: 'transformers.js ' + (tok.constructor.name) + ' on /work/shared/data/qwen2',
              prompts: [] };
for (const text of inp.prompts) {
  const prompt = build(text);
  const chunks = prompt.split('<image>');
  const ids = [];
  chunks.forEach((c, i) => {
    if (i > 0) ids.push(-200);
    ids.push(...tok.encode(c, { add_special_tokens: false }));
  });
  out.prompts.push({ text, prompt, input_ids: ids });
}
fs.writeFileSync(process.argv[3], JSON.stringify(out, null, 1) + '\n');
