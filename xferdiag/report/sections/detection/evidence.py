"""What the detection sections read of a run beyond metrics.json: the test ground truth and every seed's
stored detections, matched once (the evaluator's match tables) and shared by the sections that need them."""

from __future__ import annotations

from dataclasses import dataclass

from ....rundir import RunDir
from ....rundir.evidence import run_records, seed_records
from ....tasks.detection.matching import MatchTable, match_tables


@dataclass(frozen=True)
class DetectionEvidence:
    """The test ground truth (COCO annotations) and, per arm and seed, the COCO results and their match table."""

    ground_truth: dict
    results: dict[str, dict[int, list]]
    tables: dict[str, dict[int, MatchTable]]

    def common_seeds(self, arms: list[str]) -> list[int]:
        """Seeds every one of ``arms`` has detections for, in order."""
        return sorted(set.intersection(*(set(self.results.get(arm, {})) for arm in arms))) if arms else []


def detection_evidence(rd: RunDir, arms: dict) -> DetectionEvidence | None:
    """None where the run keeps no test ground truth or no seed kept its detections."""
    ground_truth = run_records(rd).get("test_ground_truth")
    if ground_truth is None:
        return None
    results = {}
    for name, arm in arms.items():
        seeds = {seed: seed_records(rd.seed(name, seed)).get("detections") for seed in arm["seeds"]}
        if any(r is not None for r in seeds.values()):
            results[name] = {seed: r for seed, r in seeds.items() if r is not None}
    if not results:
        return None
    tables = {name: {seed: match_tables(ground_truth, r) for seed, r in by_seed.items()} for name, by_seed in results.items()}
    return DetectionEvidence(ground_truth, results, tables)
