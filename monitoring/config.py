"""The monitoring settings (`configs/monitoring.yaml`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from foundation.settings import ConfigSection, load_settings

DEFAULT_PATH = Path("configs") / "monitoring.yaml"


class DriftSettings(ConfigSection):
    thresholds: dict[str, float] = Field(default_factory=lambda: {"default": 0.1})
    min_records: int = Field(100, ge=1)


class QualitySettings(ConfigSection):
    max_accuracy_drop: float = Field(0.05, ge=0, le=1)
    max_estimated_accuracy_drop: float = Field(0.1, ge=0, le=1)


class RetrainSettings(ConfigSection):
    enabled: bool = False
    pipeline: str = "text-classifier"


class AlertSettings(ConfigSection):
    retrain: RetrainSettings = RetrainSettings()


class MonitoringConfig(ConfigSection):
    drift: DriftSettings = DriftSettings()
    quality: QualitySettings = QualitySettings()
    alerts: AlertSettings = AlertSettings()

    def constraints(self) -> dict:
        """The job's `baseline_constraints` file."""
        return {
            "thresholds": self.drift.thresholds,
            "min_records": self.drift.min_records,
            "max_accuracy_drop": self.quality.max_accuracy_drop,
            "max_estimated_accuracy_drop": self.quality.max_estimated_accuracy_drop,
        }


def load_monitoring_config(path: Path | None = None) -> MonitoringConfig:
    return load_settings(path, MonitoringConfig, DEFAULT_PATH)
