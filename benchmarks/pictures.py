"""Items whose pictures say what their titles do not: a planted catalog, a tiny CLIP trained on it, zero-shot (and
the hybrid) with and without the pictures on the same leave-one-out split (issue 37).

The catalog: ``--items`` products whose titles are uninformative ("Classic pack of 3, no. 0413") and whose generated
32×32 pictures carry a colour and a shape — 8 colours × 5 shapes, 40 clusters; the log's users each follow one or
two clusters (80 % of their events), the rest at random. ``--broken`` of the picture paths point to files that are
not there or are not images. A CLIP-style model is built from a ``transformers`` config (a 1-layer ViT over 8×8
patches, a 1-layer text transformer on all-MiniLM-L6-v2's tokenizer, 64-d projections) and trained here, a few
minutes on the CPU, on the catalog's (picture, caption) pairs ("a red circle"), then saved as a folder any anyrec
command reads with ``--image-encoder FOLDER``:

    python benchmarks/pictures.py                       # writes benchmarks/out/pictures/, prints the table
    anyrec evaluate --config benchmarks/out/pictures/anyrec.toml --image-encoder benchmarks/out/pictures/clip \\
        --models zeroshot

Prints one table (NDCG@10 / Recall@10 of each row, the picture weight chosen on validation) and writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (235, 210, 40),
           "purple": (140, 50, 180), "orange": (245, 140, 30), "black": (25, 25, 25), "teal": (30, 170, 170)}
SHAPES = ("circle", "square", "triangle", "cross", "ring")
WORDS = ("Classic", "Deluxe", "Essential", "Everyday", "Premium", "Basic", "Original", "Select")
KINDS = ("pack of 3", "set of 2", "single", "bundle", "refill", "kit")


def draw(colour: tuple[int, int, int], shape: str, rng: np.random.Generator, size: int = 32) -> Any:
    """One picture: the shape in the colour (jittered place, size and tint) on a light background."""
    from PIL import Image, ImageDraw

    bg = tuple(int(v) for v in rng.integers(225, 256, 3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    tint = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)
    r = int(rng.integers(size // 4, size // 2 - 2))
    cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=tint)
    elif shape == "square":
        d.rectangle(box, fill=tint)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=tint)
    elif shape == "cross":
        w = max(2, r // 3)
        d.rectangle((cx - w, cy - r, cx + w, cy + r), fill=tint)
        d.rectangle((cx - r, cy - w, cx + r, cy + w), fill=tint)
    else:
        d.ellipse(box, outline=tint, width=max(2, r // 3))
    return im


def make_catalog(out: Path, items: int = 2000, users: int = 3000, broken: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Write ``items.csv`` (item_id, title, image), ``interactions.csv``, ``anyrec.toml`` and ``images/`` to
    ``out``; returns the captions and clusters (for training the picture model) and what was written."""
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    colours = list(COLOURS)
    clusters = [(c, s) for c in colours for s in SHAPES]
    cluster_of = rng.integers(0, len(clusters), items)
    rows, captions, paths = [], [], []
    n_broken = int(round(broken * items))
    broken_ids = sorted(rng.choice(items, n_broken, replace=False).tolist()) if n_broken else []
    missing = set(broken_ids[::2])  # half point to nothing, half to a file that is no picture
    for i in range(items):
        colour, shape = clusters[cluster_of[i]]
        name = f"images/item{i:05d}.png"
        if i in missing:
            name = f"images/gone{i:05d}.png"  # a path to nothing
        elif i in set(broken_ids):
            (out / name).write_bytes(b"not a picture\n")  # a file that is no image
        else:
            draw(COLOURS[colour], shape, rng).save(out / name)
        title = f"{WORDS[rng.integers(len(WORDS))]} {KINDS[rng.integers(len(KINDS))]}, no. {rng.integers(10000):04d}"
        rows.append((f"p{i}", title, name))
        captions.append(f"a {colour} {shape}")
        paths.append(str(out / name))
    with open(out / "items.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("item_id", "title", "image"))
        writer.writerows(rows)
    members = [np.flatnonzero(cluster_of == c) for c in range(len(clusters))]
    events = 0
    with open(out / "interactions.csv", "w", encoding="utf-8") as fh:
        fh.write("user_id,item_id,timestamp\n")
        for u in range(users):
            liked = rng.choice(len(clusters), int(rng.integers(1, 3)), replace=False)
            length = int(rng.integers(5, 21))
            seen: set[int] = set()
            t = 1_600_000_000 + int(rng.integers(0, 10**6))
            while len(seen) < length:
                if rng.random() < 0.8:
                    pool = members[int(rng.choice(liked))]
                    item = int(pool[rng.integers(len(pool))]) if len(pool) else int(rng.integers(items))
                else:
                    item = int(rng.integers(items))
                if item in seen:
                    continue
                seen.add(item)
                t += int(rng.integers(60, 86_400))
                fh.write(f"u{u},p{item},{t}\n")
                events += 1
    (out / "anyrec.toml").write_text(
        '[data]\nitems = "items.csv"\nitem_id = "item_id"\ntext = ["title"]\nimage = "image"\n'
        'interactions = "interactions.csv"\nuser = "user_id"\nitem = "item_id"\ntime = "timestamp"\n'
    )
    return {"captions": captions, "paths": paths, "broken": broken_ids, "missing": sorted(missing), "events": events,
            "clusters": len(clusters)}


def build_clip(folder: Path, image_size: int = 32, dim: int = 64, seed: int = 0) -> Any:
    """A tiny CLIP from a ``transformers`` config (random weights) with all-MiniLM-L6-v2's tokenizer (it ships in a
    package) and a CLIP image processor, saved to ``folder``; returns the model."""
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    from anyrec.lm.encoder import resolve_encoder

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(resolve_encoder("default"))
    cfg = CLIPConfig(
        text_config={
            "vocab_size": tok.vocab_size,
            "hidden_size": dim,
            "intermediate_size": 2 * dim,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.cls_token_id,
            "eos_token_id": tok.sep_token_id,
        },
        vision_config={
            "image_size": image_size,
            "patch_size": 8,
            "hidden_size": dim,
            "intermediate_size": 2 * dim,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=dim,
    )
    model = CLIPModel(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(folder)
    return model


def train_clip(folder: Path, paths: list[str], captions: list[str], minutes: float = 3.0, epochs: int = 30,
               batch: int = 128, seed: int = 0) -> dict[str, Any]:
    """Build (:func:`build_clip`) and train the tiny CLIP on ``(picture, caption)`` pairs (CLIP's symmetric
    contrastive loss; pictures that cannot be read are left out), then save it to ``folder``."""
    import torch
    from PIL import Image
    from transformers import AutoTokenizer, CLIPImageProcessor

    model = build_clip(folder, seed=seed)
    tok = AutoTokenizer.from_pretrained(folder)
    proc = CLIPImageProcessor.from_pretrained(folder)
    pics, texts = [], []
    for p, c in zip(paths, captions):
        try:
            with Image.open(p) as im:
                pics.append(im.convert("RGB"))
            texts.append(c)
        except OSError:
            continue
    pixels = proc(images=pics, return_tensors="pt")["pixel_values"]
    enc = tok(texts, padding=True, return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    start, losses, done = time.monotonic(), [], 0
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(texts), generator=gen)
        total = 0.0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            out = model(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx],
                        pixel_values=pixels[idx], return_loss=True)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            total += float(out.loss.detach()) * len(idx)
        losses.append(round(total / len(order), 4))
        done = epoch + 1
        logging.info("clip epoch %d/%d: loss %.4f (%.0f s)", done, epochs, losses[-1], time.monotonic() - start)
        if time.monotonic() - start > 60 * minutes:
            break
    model.eval()
    model.save_pretrained(folder)
    return {"pairs": len(texts), "epochs": done, "loss": losses, "seconds": round(time.monotonic() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/out/pictures")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--broken", type=float, default=0.1, help="share of picture paths that are missing or not images")
    ap.add_argument("--minutes", type=float, default=3.0, help="the picture model's training budget")
    ap.add_argument("--models", default="zeroshot,hybrid")
    ap.add_argument("--reuse-clip", action="store_true", help="keep OUT/clip from an earlier run (the same catalog)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    from anyrec.cli.common import cache_dir
    from anyrec.data.load import load_dataset
    from anyrec.data.split import SplitConfig, make_split
    from anyrec.data.table import mapping_from_toml
    from anyrec.eval.experiment import ExperimentConfig, run_experiment

    out = Path(args.out)
    made = make_catalog(out, args.items, args.users, args.broken)
    logging.info("catalog: %d items (%d pictures broken), %d users, %d events", args.items, len(made["broken"]),
                 args.users, made["events"])
    if args.reuse_clip and (out / "clip" / "config.json").exists():
        clip = json.loads((out / "clip-training.json").read_text())
    else:
        clip = train_clip(out / "clip", made["paths"], made["captions"], args.minutes)
        (out / "clip-training.json").write_text(json.dumps(clip))
    ds = load_dataset(None, mapping=mapping_from_toml(out / "anyrec.toml"))
    split = make_split(ds, SplitConfig(protocol="loo"))
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    cache = cache_dir(False)
    rows: dict[str, Any] = {}
    for label, extra in (("text only", {}), ("text + pictures", {"image_encoder": str((out / "clip").resolve())})):
        cfg = ExperimentConfig(
            models=models, ks=(10,), model_options={m: {"encoder.cache_dir": cache, **extra} for m in models}
        )
        res = run_experiment(ds, cfg, split=split)
        for m in models:
            r, tuned = res["models"][m], res.get("tuned", {}).get(m, {})
            rows[f"{m} · {label}"] = {"ndcg@10": r["ndcg@10"], "recall@10": r["recall@10"],
                                      "image_weight": tuned.get("image_weight"), "tuned": tuned,
                                      "pictures": r.get("pictures"), "seconds": r["fit_seconds"] + r["tune_seconds"]}
    print(f"\npictures benchmark: {args.items} items, {args.users} users, loo, {len(made['broken'])} broken pictures")
    print(f"{'row':<28} {'NDCG@10':>8} {'Recall@10':>10}  image_weight (validation)")
    for name, r in rows.items():
        print(f"{name:<28} {r['ndcg@10']:>8.4f} {r['recall@10']:>10.4f}  {r['image_weight']}")
    for m in models:
        base, pic = rows[f"{m} · text only"]["ndcg@10"], rows[f"{m} · text + pictures"]["ndcg@10"]
        print(f"{m}: with pictures ÷ without = {pic / max(base, 1e-12):.2f}×")
    path = Path(args.json or out / "pictures.json")
    path.write_text(json.dumps({"rows": rows, "clip": clip, "broken": len(made["broken"]), "items": args.items,
                                "users": args.users, "events": made["events"]}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
