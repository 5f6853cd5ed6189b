"""Run one RecBole model on pre-split atomic files; prints one JSON line with its metrics.

Runs inside the separate RecBole virtual environment (``make peers-venv``), never inside
anyrec's: RecBole 1.2.1 pins numpy<2, pandas<2.3, scipy<1.14 and setuptools<70.

    python recbole_runner.py --data-path DIR --dataset NAME --model Pop [--config JSON]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time

import torch

# RecBole 1.2.1 saves and reloads whole checkpoints (with numpy state); torch >= 2.6 defaults
# torch.load to weights_only=True, which refuses them.
torch.load = functools.partial(torch.load, weights_only=False)

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_seed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-path", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--config", default="{}", help="JSON dict of RecBole settings")
    ap.add_argument("--sequential", action="store_true", help="files hold user, item_id_list, item_id rows")
    args = ap.parse_args()
    ckpt = tempfile.mkdtemp(prefix="recbole-ckpt-")
    settings = {
        "data_path": args.data_path,
        "dataset": args.dataset,
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision", "MAP"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": ckpt,
        "seed": 2020,
        "reproducibility": True,
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        "worker": 0,
    }
    if args.sequential:
        settings["load_col"] = {"inter": ["user_id", "item_id_list", "item_id"]}
        settings["MAX_ITEM_LIST_LENGTH"] = 50
        # item_id_list must share item_id's token map, or the lists index another vocabulary.
        settings["alias_of_item_id"] = ["item_id_list"]
    settings.update(json.loads(args.config))
    config = Config(model=args.model, dataset=args.dataset, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    t0 = time.perf_counter()
    best_valid, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    fit_s = time.perf_counter() - t0
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    out = {
        "model": args.model,
        "recbole": __import__("recbole").__version__,
        "fit_seconds": round(fit_s, 3),
        "test": {k.lower(): float(v) for k, v in dict(test_result).items()},
        "valid": {k.lower(): float(v) for k, v in dict(best_valid_result).items()},
        "epochs": int(getattr(trainer, "cur_step", 0)),
    }
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
