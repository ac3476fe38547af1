"""Drift of each feature between the reference profile and a window, with the tests Evidently applies to
large samples (and with the same formulas, so that its report and these verdicts agree):
Jensen-Shannon distance (natural log) of the value shares for categorical features, and the Wasserstein
distance normed by the reference's standard deviation for numeric ones; drift when the score reaches the
threshold (0.1 for both, Evidently's defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from steps.profile import CATEGORICAL, FEATURES, Profile


@dataclass
class FeatureDrift:
    feature: str
    method: str
    score: float
    threshold: float
    drift: bool
    reference_mean: float | None = None
    current_mean: float | None = None

    def to_json(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def jensen_shannon(reference: Profile, current: Profile, feature: str) -> float:
    import numpy as np
    from scipy.spatial import distance

    keys = sorted(set(reference.counts[feature]) | set(current.counts[feature]), key=str)
    ref = np.array([reference.counts[feature][k] for k in keys], dtype=float)
    cur = np.array([current.counts[feature][k] for k in keys], dtype=float)
    return float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))


def wasserstein_normed(reference: Profile, current: Profile, feature: str) -> float:
    import numpy as np
    from scipy import stats

    ref_values, ref_weights = (np.array(x, dtype=float) for x in zip(*reference.counts[feature].items(), strict=True))
    cur_values, cur_weights = (np.array(x, dtype=float) for x in zip(*current.counts[feature].items(), strict=True))
    mean = np.average(ref_values, weights=ref_weights)
    std = float(np.sqrt(np.average((ref_values - mean) ** 2, weights=ref_weights)))
    distance = stats.wasserstein_distance(ref_values, cur_values, ref_weights, cur_weights)
    return float(distance / max(std, 0.001))


def compare(reference: Profile, current: Profile, thresholds: dict[str, float]) -> list[FeatureDrift]:
    """A verdict for every feature that both profiles have."""
    found = []
    for feature in FEATURES:
        if not (reference.has(feature) and current.has(feature)):
            continue
        threshold = thresholds.get(feature, thresholds.get("default", 0.1))
        if feature in CATEGORICAL:
            score = jensen_shannon(reference, current, feature)
            found.append(FeatureDrift(feature, "jensenshannon", score, threshold, score >= threshold))
        else:
            score = wasserstein_normed(reference, current, feature)
            found.append(
                FeatureDrift(
                    feature,
                    "wasserstein",
                    score,
                    threshold,
                    score >= threshold,
                    reference.mean(feature),
                    current.mean(feature),
                )
            )
    return found
