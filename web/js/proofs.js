// Proofs checked in the browser, apart from the server's own code: the signed checkpoint (c2sp.org/signed-note,
// Ed25519) and the RFC 6962 tree's inclusion and consistency proofs (the algorithms of RFC 9162 §2.1.3.2 and
// §2.1.4.2), with Web Crypto's SHA-256 and Ed25519. The last checkpoint seen is kept in this browser, so that each
// visit can check that the log still extends it.

import { raw } from "./api.js";

const SEEN = "cairn.checkpoint";

export class ProofError extends Error {}

// Whether this page can check anything: Web Crypto needs a secure page (HTTPS, or localhost).
export function available() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const fromHex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
export const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
const nodeHash = (left, right) => sha256(concat(new Uint8Array([1]), left, right));

// A verifier key `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`, its ID checked.
async function parseKey(text) {
  const [name, id, material] = [text.slice(0, text.indexOf("+")), text.split("+")[1], text.split("+").slice(2).join("+")];
  const bytes = b64(material.trim());
  if (!name || bytes.length !== 33 || bytes[0] !== 1) throw new ProofError("the key is not an Ed25519 verifier key");
  const pub = bytes.slice(1);
  const computed = (await sha256(concat(new TextEncoder().encode(name + "\n"), new Uint8Array([1]), pub))).slice(0, 4);
  if (hex(computed) !== id) throw new ProofError(`the key's ID ${id} is not the one its name and key give`);
  return { name, id: computed, key: await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]) };
}

// Opens a signed checkpoint with the verifier key: its signature, then its body.
export async function openCheckpoint(note, keyText) {
  const key = await parseKey(keyText);
  const split = note.lastIndexOf("\n\n");
  if (!note.endsWith("\n") || split < 0) throw new ProofError("the checkpoint is not a signed note");
  const text = note.slice(0, split + 1);
  let verified = false;
  for (const line of note.slice(split + 2).split("\n").filter(Boolean)) {
    if (!line.startsWith("\u2014 ")) throw new ProofError("a signature line is malformed");
    const [signer, sig] = line.slice(2).split(" ");
    const blob = b64(sig);
    if (signer !== key.name || !equal(blob.slice(0, 4), key.id)) continue;
    if (!(await crypto.subtle.verify("Ed25519", key.key, blob.slice(4), new TextEncoder().encode(text)))) {
      throw new ProofError("the checkpoint's signature does not verify: it was altered, or signed by another key");
    }
    verified = true;
  }
  if (!verified) throw new ProofError(`the checkpoint carries no signature by ${key.name}`);
  const [origin, size, root] = text.split("\n");
  if (origin !== key.name || !/^(0|[1-9][0-9]*)$/.test(size)) throw new ProofError("the checkpoint's body is malformed");
  return { origin, size: Number(size), root: b64(root), rootText: root, note };
}

// RFC 9162 §2.1.3.2: the root an inclusion path leads to, and each step on the way (for showing the path).
export async function rootFromInclusion(index, size, leaf, path) {
  if (index >= size) throw new ProofError(`leaf ${index} is not in a tree of ${size}`);
  let [fn, sn, r] = [index, size - 1, leaf];
  const steps = [];
  for (const p of path) {
    if (sn === 0) throw new ProofError("the path is longer than the tree is high");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      steps.push({ side: "left", sibling: p, hash: r });
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
      steps.push({ side: "right", sibling: p, hash: r });
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError("the path is shorter than the tree is high");
  return { root: r, steps };
}

// RFC 9162 §2.1.4.2: whether the tree of `first` with root `firstHash` is a prefix of the one of `second`.
export async function consistent(first, second, firstHash, secondHash, path) {
  if (first === second) return path.length === 0 && equal(firstHash, secondHash);
  if (first === 0) return path.length === 0;
  if (first > second || path.length === 0) return false;
  if ((first & (first - 1)) === 0) path = [firstHash, ...path];
  let [fn, sn] = [first - 1, second - 1];
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let [fr, sr] = [path[0], path[0]];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, firstHash) && equal(sr, secondHash);
}

async function text(path) {
  return (await raw("GET", path)).text();
}

// The server's current checkpoint, opened with its key.
export async function current() {
  const [note, key] = await Promise.all([text("/api/audit/checkpoint"), text("/api/audit/key")]);
  return { checkpoint: await openCheckpoint(note, key), key: key.trim() };
}

// Proves the event at `position` (whose chain hash is `eventHash`, hex) in the latest checkpoint: the signature,
// then the path from its leaf to the checkpoint's root.
export async function prove(api, position, eventHash) {
  let { checkpoint, key } = await current();
  let proof;
  if (position > checkpoint.size) {
    // Newer than the checkpoint: the server signs one that covers it.
    proof = await api("GET", `/api/audit/proof/inclusion?position=${position}`);
    ({ checkpoint, key } = await current());
    if (checkpoint.size < proof.tree_size) throw new ProofError("no checkpoint covers this event yet");
    proof = await api("GET", `/api/audit/proof/inclusion?position=${position}&size=${checkpoint.size}`);
  } else {
    proof = await api("GET", `/api/audit/proof/inclusion?position=${position}&size=${checkpoint.size}`);
  }
  if (proof.event_hash !== eventHash) throw new ProofError("the proof is for another event's hash");
  const leaf = await leafHash(fromHex(eventHash));
  const { root, steps } = await rootFromInclusion(position - 1, checkpoint.size, leaf, proof.hashes.map(b64));
  return { ok: equal(root, checkpoint.root), checkpoint, key, leaf, steps, root };
}

// Checks the server's checkpoint against the one this browser saw last, then keeps the new one if it extends it.
// Answers { state: "first" | "same" | "extended" | "rewritten" | "key-changed", previous, checkpoint }.
export async function watch(api) {
  const { checkpoint, key } = await current();
  let previous = null;
  try { previous = JSON.parse(localStorage.getItem(SEEN) || "null"); } catch { previous = null; }
  const keep = () => localStorage.setItem(SEEN, JSON.stringify({ key, size: checkpoint.size, root: checkpoint.rootText, seen: new Date().toISOString() }));
  if (!previous) { keep(); return { state: "first", checkpoint }; }
  if (previous.key !== key) return { state: "key-changed", previous, checkpoint };
  if (previous.size > checkpoint.size) return { state: "rewritten", previous, checkpoint };
  const proof = await api("GET", `/api/audit/proof/consistency?from=${previous.size}&to=${checkpoint.size}`);
  const ok = await consistent(previous.size, checkpoint.size, b64(previous.root), checkpoint.root, proof.hashes.map(b64));
  if (!ok) return { state: "rewritten", previous, checkpoint };
  const state = previous.size === checkpoint.size ? "same" : "extended";
  keep();
  return { state, previous, checkpoint };
}
