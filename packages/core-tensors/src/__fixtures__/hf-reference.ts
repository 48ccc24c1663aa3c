/*
 * An independent float64 forward pass of Hugging Face Llama / Qwen2 / Qwen3 checkpoints, for
 * parity tests. It shares no code with the package: its own safetensors reader (header + BF16/F16/F32
 * widening to float64), its own config handling, plain loops in float64, written from
 * transformers' modeling_llama.py / modeling_qwen2.py / modeling_qwen3.py semantics (RMSNorm,
 * rotate-half RoPE with the llama3 frequency rule, repeat_kv grouping, SwiGLU, tied heads taken from
 * the embedding even when lm_head.weight is stored).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

type Weights = Map<string, { shape: number[]; data: Float64Array }>;

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f === 0 ? s * Infinity : NaN;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function readFile64(path: string, into: Weights): void {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + n;
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const count = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(count);
    const at = base + e.data_offsets[0];
    for (let i = 0; i < count; i++) {
      if (e.dtype === 'BF16') {
        const b = Buffer.alloc(4);
        b.writeUInt16LE(buf.readUInt16LE(at + 2 * i), 2);
        data[i] = b.readFloatLE(0);
      } else if (e.dtype === 'F16') data[i] = half(buf.readUInt16LE(at + 2 * i));
      else if (e.dtype === 'F32') data[i] = buf.readFloatLE(at + 4 * i);
      else throw new Error(`reference: dtype ${e.dtype}`);
    }
    into.set(name, { shape: e.shape, data });
  }
}

export class ReferenceModel {
  private readonly w: Weights = new Map();
  private readonly cfg: Record<string, unknown>;

  constructor(dir: string) {
    this.cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const indexPath = join(dir, 'model.safetensors.index.json');
    if (existsSync(indexPath)) {
      const index = JSON.parse(readFileSync(indexPath, 'utf8')) as {
        weight_map: Record<string, string>;
      };
      for (const file of new Set(Object.values(index.weight_map)))
        readFile64(join(dir, file), this.w);
    } else readFile64(join(dir, 'model.safetensors'), this.w);
  }

  private get(name: string): Float64Array {
    const t = this.w.get(name);
    if (t === undefined) throw new Error(`reference: missing ${name}`);
    return t.data;
  }

  private num(key: string, fallback?: number): number {
    const v = this.cfg[key];
    if (typeof v === 'number') return v;
    if (fallback === undefined) throw new Error(`reference: config.${key}`);
    return fallback;
  }

  /** y[o] = Σ_i W[o, i] x[i] (+ b[o]), W stored [out, in]. */
  private static matvec(
    W: Float64Array,
    x: Float64Array,
    out: number,
    b?: Float64Array,
  ): Float64Array {
    const inDim = x.length;
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b === undefined ? 0 : b[o]!;
      for (let i = 0; i < inDim; i++) s += W[o * inDim + i]! * x[i]!;
      y[o] = s;
    }
    return y;
  }

  private rms(x: Float64Array, w: Float64Array, offset = 0, width = x.length): void {
    const eps = this.num('rms_norm_eps', 1e-6);
    let ss = 0;
    for (let i = 0; i < width; i++) ss += x[offset + i]! ** 2;
    const r = 1 / Math.sqrt(ss / width + eps);
    for (let i = 0; i < width; i++) x[offset + i] = x[offset + i]! * r * w[i]!;
  }

  private frequencies(hd: number): Float64Array {
    const theta = this.num('rope_theta', 10000);
    const f = new Float64Array(hd / 2);
    for (let i = 0; i < hd / 2; i++) f[i] = 1 / theta ** ((2 * i) / hd);
    const rs = this.cfg['rope_scaling'] as Record<string, number> | null | undefined;
    if (rs !== null && rs !== undefined) {
      const factor = rs['factor']!;
      const low = rs['low_freq_factor']!;
      const high = rs['high_freq_factor']!;
      const oldLen = rs['original_max_position_embeddings']!;
      for (let i = 0; i < f.length; i++) {
        const wavelen = (2 * Math.PI) / f[i]!;
        if (wavelen < oldLen / high) continue; // high frequency: unchanged
        if (wavelen > oldLen / low)
          f[i] = f[i]! / factor; // low frequency: scaled
        else {
          const smooth = (oldLen / wavelen - low) / (high - low);
          f[i] = (1 - smooth) * (f[i]! / factor) + smooth * f[i]!;
        }
      }
    }
    return f;
  }

  /** Logits [T][vocab] of one sequence, float64 throughout. */
  logits(ids: number[]): Float64Array[] {
    const c = this.cfg;
    const d = this.num('hidden_size');
    const H = this.num('num_attention_heads');
    const K = this.num('num_key_value_heads', H);
    const hd = typeof c['head_dim'] === 'number' ? (c['head_dim'] as number) : d / H;
    const L = this.num('num_hidden_layers');
    const V = this.num('vocab_size');
    const I = this.num('intermediate_size');
    const qwen2 = c['model_type'] === 'qwen2';
    const qwen3 = c['model_type'] === 'qwen3';
    const T = ids.length;
    const embed = this.get('model.embed_tokens.weight');
    const xs = ids.map((id) => embed.slice(id * d, (id + 1) * d));
    const freq = this.frequencies(hd);
    const rope = (v: Float64Array, heads: number, pos: number): void => {
      for (let h = 0; h < heads; h++) {
        const o = h * hd;
        const rotated = new Float64Array(hd);
        for (let i = 0; i < hd / 2; i++) {
          rotated[i] = -v[o + i + hd / 2]!;
          rotated[i + hd / 2] = v[o + i]!;
        }
        for (let i = 0; i < hd; i++) {
          const angle = pos * freq[i % (hd / 2)]!;
          v[o + i] = v[o + i]! * Math.cos(angle) + rotated[i]! * Math.sin(angle);
        }
      }
    };
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      const qs: Float64Array[] = [];
      const ks: Float64Array[] = [];
      const vs: Float64Array[] = [];
      for (let t = 0; t < T; t++) {
        const h = Float64Array.from(xs[t]!);
        this.rms(h, this.get(`${p}.input_layernorm.weight`));
        const q = ReferenceModel.matvec(
          this.get(`${p}.self_attn.q_proj.weight`),
          h,
          H * hd,
          qwen2 ? this.get(`${p}.self_attn.q_proj.bias`) : undefined,
        );
        const k = ReferenceModel.matvec(
          this.get(`${p}.self_attn.k_proj.weight`),
          h,
          K * hd,
          qwen2 ? this.get(`${p}.self_attn.k_proj.bias`) : undefined,
        );
        const v = ReferenceModel.matvec(
          this.get(`${p}.self_attn.v_proj.weight`),
          h,
          K * hd,
          qwen2 ? this.get(`${p}.self_attn.v_proj.bias`) : undefined,
        );
        if (qwen3) {
          for (let j = 0; j < H; j++)
            this.rms(q, this.get(`${p}.self_attn.q_norm.weight`), j * hd, hd);
          for (let j = 0; j < K; j++)
            this.rms(k, this.get(`${p}.self_attn.k_norm.weight`), j * hd, hd);
        }
        rope(q, H, t);
        rope(k, K, t);
        qs.push(q);
        ks.push(k);
        vs.push(v);
      }
      for (let t = 0; t < T; t++) {
        const attn = new Float64Array(H * hd);
        for (let h = 0; h < H; h++) {
          const kvh = Math.floor(h / (H / K));
          const scores = new Float64Array(t + 1);
          let max = -Infinity;
          for (let s = 0; s <= t; s++) {
            let dot = 0;
            for (let i = 0; i < hd; i++) dot += qs[t]![h * hd + i]! * ks[s]![kvh * hd + i]!;
            scores[s] = dot / Math.sqrt(hd);
            max = Math.max(max, scores[s]!);
          }
          let sum = 0;
          for (let s = 0; s <= t; s++) sum += scores[s] = Math.exp(scores[s]! - max);
          for (let s = 0; s <= t; s++)
            for (let i = 0; i < hd; i++)
              attn[h * hd + i] = attn[h * hd + i]! + (scores[s]! / sum) * vs[s]![kvh * hd + i]!;
        }
        const o = ReferenceModel.matvec(this.get(`${p}.self_attn.o_proj.weight`), attn, d);
        for (let i = 0; i < d; i++) xs[t]![i] = xs[t]![i]! + o[i]!;
        const h2 = Float64Array.from(xs[t]!);
        this.rms(h2, this.get(`${p}.post_attention_layernorm.weight`));
        const g = ReferenceModel.matvec(this.get(`${p}.mlp.gate_proj.weight`), h2, I);
        const u = ReferenceModel.matvec(this.get(`${p}.mlp.up_proj.weight`), h2, I);
        for (let i = 0; i < I; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
        const down = ReferenceModel.matvec(this.get(`${p}.mlp.down_proj.weight`), g, d);
        for (let i = 0; i < d; i++) xs[t]![i] = xs[t]![i]! + down[i]!;
      }
    }
    const tied = c['tie_word_embeddings'] === true;
    const head = tied ? embed : this.get('lm_head.weight');
    return xs.map((x) => {
      const h = Float64Array.from(x);
      this.rms(h, this.get('model.norm.weight'));
      return ReferenceModel.matvec(head, h, V);
    });
  }

  /** Greedy continuation by full recomputation (no cache): the argmax of the last position each step. */
  greedy(prompt: number[], steps: number, limit?: number): number[] {
    const ids = [...prompt];
    const out: number[] = [];
    for (let s = 0; s < steps; s++) {
      const logits = this.logits(ids).at(-1)!;
      let best = 0;
      const n = limit ?? logits.length;
      for (let v = 1; v < n; v++) if (logits[v]! > logits[best]!) best = v;
      out.push(best);
      ids.push(best);
    }
    return out;
  }
}
