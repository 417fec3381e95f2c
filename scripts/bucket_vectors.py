#!/usr/bin/env python3
"""Golden bucketing vectors, computed with the reference C xxHash (PyPI `xxhash`).

    python3 scripts/bucket_vectors.py            # check tests/data/bucket_vectors.json
    python3 scripts/bucket_vectors.py --generate # rewrite it (only when adding cases)

The contract (README, "Bucketing contract"), which services in any language must reproduce:

    seed   = xxh3_64(salt_bytes, seed=0)
    h      = xxh3_64(user_bytes, seed=seed)
    bucket = (h * 1_000_000) >> 64
"""
import json
import random
import sys
from pathlib import Path

import xxhash

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "data" / "bucket_vectors.json"


def bucket(salt: str, user: str) -> tuple[int, int, int]:
    seed = xxhash.xxh3_64_intdigest(salt.encode("utf-8"), seed=0)
    h = xxhash.xxh3_64_intdigest(user.encode("utf-8"), seed=seed)
    return seed, h, (h * 1_000_000) >> 64


def cases() -> list[tuple[str, str]]:
    rng = random.Random(20251020)
    salts = [
        "", "phase_4_deployment", "htdag_enabled", "new_checkout", "a", "é",
        "ロールアウト", "x" * 1000, "salt with spaces", "0",
    ]
    users = ["", "user-42", "qa-1", "vip-7", "0", "ü", "用户-１", "🚀", "a" * 1000,
             "é" * 500, "\u0000", "line\nbreak", "tab\tuser"]
    # Lengths around xxh3's internal thresholds (16, 128, 240 bytes, stripes of 64, blocks of 1024).
    for n in [1, 3, 4, 8, 9, 15, 16, 17, 64, 127, 128, 129, 239, 240, 241, 255, 256, 511, 1023, 1024, 1025]:
        users.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(n)))
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@éüßλж中文🙂"
    out = [(s, u) for s in salts[:4] for u in users]
    while len(out) < 600:
        salt = rng.choice(salts)
        n = rng.choice([0, 1, 5, 12, 36, 64, 200, 1000])
        user = "".join(rng.choice(alphabet) for _ in range(n))
        out.append((salt, user))
    return out


def generate() -> None:
    rows = []
    for salt, user in cases():
        seed, h, b = bucket(salt, user)
        rows.append({"salt": salt, "user": user, "seed": f"{seed:016x}", "hash": f"{h:016x}", "bucket": b})
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps({"xxhash": xxhash.XXHASH_VERSION, "vectors": rows}, ensure_ascii=False, indent=1) + "\n",
                       encoding="utf-8")
    print(f"wrote {len(rows)} vectors to {VECTORS}")


def check() -> int:
    rows = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    bad = 0
    for i, row in enumerate(rows):
        seed, h, b = bucket(row["salt"], row["user"])
        if (f"{seed:016x}", f"{h:016x}", b) != (row["seed"], row["hash"], row["bucket"]):
            bad += 1
            print(f"vector {i}: salt={row['salt'][:40]!r} user={row['user'][:40]!r}: "
                  f"expected bucket {row['bucket']}, python xxhash gives {b}", file=sys.stderr)
    if len(rows) < 500:
        print(f"only {len(rows)} vectors; the contract asks for at least 500", file=sys.stderr)
        return 1
    print(f"bucket vectors: {len(rows) - bad}/{len(rows)} agree with python xxhash {xxhash.VERSION} "
          f"(libxxhash {xxhash.XXHASH_VERSION})")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--generate"]:
        generate()
    else:
        sys.exit(check())
