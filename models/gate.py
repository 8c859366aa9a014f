"""The champion gate: the rules a new model must pass to take the ``champion`` alias.

The models compared are held-out models (:meth:`models.store.TriageModel.heldout`:
the new model's and the champion's), never a production refit that trained on these
rows. A new model is promoted only if, on the *same* test rows,

0. it learned something: early stopping kept more than one boosting round (a model whose
   validation loss never improved after its first tree is the base rate plus noise; on
   the negative control such a one-tree model reached test ROC AUC 0.555 by chance, and
   rule 1 alone lets 1 such draw in 40 through),
1. its ROC AUC is credibly above chance (95 % Hanley-McNeil lower bound > 0.5),
2. it beats the best baseline by at least ``min_lift_over_baselines``, and
3. its gate metric is not worse than the current champion's by more than ``tolerance``.

Pure functions of numbers: the register stage gathers them, MLflow records the outcome.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "recall_top10": True, "recall_top20": True,
                    "brier": False, "log_loss": False, "ece": False}

def auc_lower_bound(auc: float, n_bad: int, n_good: int, z: float = 1.96) -> float:
    """Lower end of the Hanley-McNeil (1982) confidence interval of a ROC AUC."""
    if n_bad == 0 or n_good == 0 or not np.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_bad - 1) * (q1 - auc**2) + (n_good - 1) * (q2 - auc**2)) / (n_bad * n_good)
    return float(auc - z * np.sqrt(max(variance, 0.0)))


@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    reason: str
    metric: str
    new_value: float
    new_lower_bound: float
    best_baseline: str
    best_baseline_value: float
    champion_version: str | None
    champion_value: float | None
    tolerance: float
    min_lift_over_baselines: float

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    metric: str, new_value: float, new_lower_bound: float, baselines: dict[str, float],
    champion_value: float | None, champion_version: str | None, tolerance: float, min_lift: float,
    boosting_rounds: int | None = None,
) -> GateDecision:
    """Apply the gate rules; the reason names the rule that decided.

    ``boosting_rounds``: the held-out risk model's early-stopped round count (None: unknown)."""
    higher = HIGHER_IS_BETTER.get(metric, True)
    sign = 1.0 if higher else -1.0
    best_name, best_value = max(baselines.items(), key=lambda kv: sign * kv[1]) if baselines else ("none", float("nan"))
    common = dict(metric=metric, new_value=new_value, new_lower_bound=new_lower_bound, best_baseline=best_name,
                  best_baseline_value=best_value, champion_version=champion_version,
                  champion_value=champion_value, tolerance=tolerance, min_lift_over_baselines=min_lift)
    if boosting_rounds is not None and boosting_rounds <= 1:
        return GateDecision(False, "no credible skill: the model learned nothing (early stopping kept "
                            f"{boosting_rounds} boosting round: the validation loss never improved)", **common)
    if not new_lower_bound > 0.5:
        return GateDecision(False, f"no credible skill: ROC AUC 95% lower bound {new_lower_bound:.3f} <= 0.5", **common)
    if baselines and not sign * (new_value - best_value) >= min_lift:
        return GateDecision(
            False, f"does not beat baseline {best_name} by {min_lift}: {metric} {new_value:.4f} vs {best_value:.4f}", **common
        )
    if champion_value is not None and sign * (new_value - champion_value) < -tolerance:
        return GateDecision(
            False, f"worse than champion v{champion_version}: {metric} {new_value:.4f} vs {champion_value:.4f} "
            f"(tolerance {tolerance})", **common,
        )
    if champion_value is None:
        return GateDecision(True, "no champion yet", **common)
    return GateDecision(
        True, f"not worse than champion v{champion_version}: {metric} {new_value:.4f} vs {champion_value:.4f}", **common
    )

def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts to one level with dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
