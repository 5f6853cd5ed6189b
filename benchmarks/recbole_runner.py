"""Run one RecBole model on pre-split atomic files; prints one JSON line with its metrics.

Runs inside the separate RecBole virtual environment (``make peers-venv``), never inside
anyrec's: RecBole 1.2.1 pins numpy<2, pandas<2.3, scipy<1.14 and setuptools<70.

    python recbole_runner.py --data-path DIR --dataset NAME --model Pop [--config JSON] [--scores OUT.npz]

With ``--scores`` the best model's raw scores for every test user (its own ``full_sort_predict``,
nothing masked) are saved with the users' and items' raw ids, so that anyrec's evaluator can rank
them under the same rule as every other row.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time

import numpy as np
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
    ap.add_argument("--scores", default=None, help="write the test users' full score matrix here (.npz)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with a GPU")
    ap.add_argument("--refit", action="store_true",
                    help="general models: refit on the 'trainvalid' file for the epochs chosen on validation and "
                         "take the test scores from that fit (so the test-time history is training + validation)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
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
        "device": args.device,
        "use_gpu": args.device != "cpu",
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
    dataset, (train_data, valid_data, test_data), trainer = prepare(args.model, args.dataset, settings)
    curve = record_epochs(trainer)
    t0 = time.perf_counter()
    best_valid, best_valid_result = trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    fit_s = time.perf_counter() - t0
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    valid_scores = [c["valid_score"] for c in curve if "valid_score" in c]
    out = {
        "model": args.model,
        "recbole": __import__("recbole").__version__,
        "fit_seconds": round(fit_s, 3),
        "test": {k.lower(): float(v) for k, v in dict(test_result).items()},
        "valid": {k.lower(): float(v) for k, v in dict(best_valid_result).items()},
        # Epochs trained (RecBole's trainer.cur_step is its early-stopping counter, not this).
        "epochs": sum(1 for c in curve if "train_seconds" in c),
        "best_epoch": int(np.argmax(valid_scores)) if valid_scores else None,
        "curve": curve,
        "threads": torch.get_num_threads(),
        "device": args.device,
        "settings": {k: v for k, v in json.loads(args.config).items()},
    }
    if args.scores and args.refit and not args.sequential:
        # Everything known at test time: the validation rows join training, for the same number of epochs.
        epochs = max(1, (out["best_epoch"] or 0) + 1)
        dataset2, (train2, _valid2, test2), trainer2 = prepare(
            args.model,
            args.dataset,
            {**settings, "benchmark_filename": ["trainvalid", "valid", "test"], "epochs": epochs},
        )
        t0 = time.perf_counter()
        trainer2.fit(train2, None, saved=False, show_progress=False, verbose=False)
        out["refit"] = {"epochs": epochs, "seconds": round(time.perf_counter() - t0, 3), "history": "train+valid"}
        out["scores_file"] = dump_scores(trainer2.model, test2, dataset2, args.scores)
    elif args.scores:
        out["scores_file"] = dump_scores(trainer.model, test_data, dataset, args.scores)
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")


def prepare(
    model_name: str, dataset_name: str, settings: dict[str, object]
) -> tuple[object, tuple[object, object, object], object]:
    """RecBole's own set-up sequence: config, seeded dataset and loaders, model and trainer."""
    config = Config(model=model_name, dataset=dataset_name, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, loaders[0]._dataset).to(config["device"])
    return dataset, loaders, get_trainer(config["MODEL_TYPE"], config["model"])(config, model)


def record_epochs(trainer: object) -> list[dict[str, float]]:
    """Wrap the trainer's epoch methods to log seconds per training epoch and each validation score."""
    curve: list[dict[str, float]] = []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch  # type: ignore[attr-defined]

    def timed_train(*a: object, **kw: object) -> object:
        t0 = time.perf_counter()
        res = train_epoch(*a, **kw)
        curve.append({"train_seconds": round(time.perf_counter() - t0, 3)})
        return res

    def timed_valid(*a: object, **kw: object) -> object:
        t0 = time.perf_counter()
        score, result = valid_epoch(*a, **kw)
        if not curve:
            curve.append({})
        curve[-1].update({"valid_score": float(score), "valid_seconds": round(time.perf_counter() - t0, 3)})
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_train, timed_valid  # type: ignore[attr-defined]
    return curve


def dump_scores(model: torch.nn.Module, test_data: object, dataset: object, path: str) -> str:
    """Raw full-catalog scores of every test row, one row per user (their first test row), with raw ids."""
    model.eval()
    uid = dataset.uid_field  # type: ignore[attr-defined]
    users: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    with torch.no_grad():
        for batch in test_data:  # type: ignore[attr-defined]
            interaction = batch[0].to(model.device)
            scores = model.full_sort_predict(interaction).view(-1, dataset.item_num)  # type: ignore[attr-defined]
            users.append(interaction[uid].cpu().numpy())
            rows.append(scores.cpu().numpy().astype(np.float32))
    user_idx = np.concatenate(users)
    score = np.concatenate(rows)
    _, first = np.unique(user_idx, return_index=True)  # a user's test rows share one input; keep one
    first = np.sort(first)
    item_tokens = dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num))  # type: ignore[attr-defined]
    np.savez(path, users=np.asarray(dataset.id2token(uid, user_idx[first]), dtype=str),  # type: ignore[attr-defined]
             items=np.asarray(item_tokens, dtype=str), scores=score[first][:, 1:])  # column 0 is RecBole's padding
    return path


if __name__ == "__main__":
    main()
