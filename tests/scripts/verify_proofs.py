#!/usr/bin/env python3
"""A second verifier of cairn's proofs, written apart from the server's: Python's `cryptography` checks the
signed note (c2sp.org/signed-note, Ed25519), hashlib the RFC 6962 tree (the RFC 9162 algorithms).

    verify_proofs.py KEY CHECKPOINT_FILE PROOFS_JSON

KEY is the verifier key (<name>+<hex key ID>+<base64(0x01 || public key)>). PROOFS_JSON holds
{"inclusion": [{"leaf_hash_of": hex event hash, "leaf_index": i, "tree_size": n, "hashes": [b64, ...]}, ...],
 "consistency": [{"from": m, "old_root": b64, "hashes": [b64, ...]}, ...]}, each against the checkpoint's tree.
Prints "ok: ..." and exits 0 when everything holds; names the first thing that does not and exits 1.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def open_note(vkey, note):
    name, key_id, material = vkey.strip().split("+", 2)
    raw = base64.b64decode(material)
    if raw[0] != 1 or len(raw) != 33:
        fail("not an Ed25519 verifier key")
    public = raw[1:]
    computed = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    if computed.hex() != key_id:
        fail(f"key ID {key_id} is not {computed.hex()}")
    if not note.endswith("\n") or "\n\n" not in note:
        fail("malformed note")
    split = note.rindex("\n\n")
    text, signatures = note[: split + 1], note[split + 2 :]
    verified = False
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            fail(f"bad signature line {line!r}")
        signer, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob)
        if signer != name or blob[:4] != computed:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], text.encode())
        except InvalidSignature:
            fail("the signature does not verify")
        verified = True
    if not verified:
        fail("no signature by the key")
    return text


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, path):
    if index >= size:
        fail("index out of range")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            fail("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        fail("inclusion proof too short")
    return r


def check_consistency(first, second, first_hash, second_hash, path):
    if first == second:
        return not path and first_hash == second_hash
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_hash and sr == second_hash


def main():
    vkey, note_file, proofs_file = sys.argv[1:4]
    text = open_note(vkey, open(note_file, encoding="utf-8").read())
    origin, size, root = text.split("\n")[:3]
    if origin != vkey.split("+")[0]:
        fail(f"origin {origin!r} is not the key's name")
    size, root = int(size), base64.b64decode(root)
    proofs = json.load(open(proofs_file, encoding="utf-8"))
    for p in proofs.get("inclusion", []):
        if p["tree_size"] != size:
            fail("an inclusion proof for another size")
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(p["leaf_hash_of"])).digest()
        path = [base64.b64decode(h) for h in p["hashes"]]
        if root_from_inclusion(p["leaf_index"], size, leaf, path) != root:
            fail(f"leaf {p['leaf_index']} does not lead to the root")
    for p in proofs.get("consistency", []):
        path = [base64.b64decode(h) for h in p["hashes"]]
        if not check_consistency(p["from"], size, base64.b64decode(p["old_root"]), root, path):
            fail(f"the tree of {p['from']} is not a prefix")
    print(
        f"ok: note signed by {origin}, {len(proofs.get('inclusion', []))} inclusion and "
        f"{len(proofs.get('consistency', []))} consistency proofs hold for size {size}"
    )


if __name__ == "__main__":
    main()
