"""Name, describe and tag a job, a dataset or a model version (`PUT` on it), under its ETag like every change."""

from __future__ import annotations

from forge.bootstrap import Forge
from forge.domain.labels import Labels
from forge.domain.models import Dataset, DistillationJob, ModelVersion
from forge.services import datasets
from forge.services.jobs import read_modify_write, update_job, update_model


def label_job(forge: Forge, tenant: str, job_id: str, labels: Labels) -> DistillationJob:
    forge.storage.jobs.get(tenant, job_id)  # JobNotFound, also for another tenant's job
    return update_job(forge, tenant, job_id, labels.apply)


def label_dataset(forge: Forge, tenant: str, dataset_id: str, labels: Labels) -> Dataset:
    datasets.get(forge, tenant, dataset_id)  # a deleted dataset is as gone as a missing one
    return read_modify_write(lambda: datasets.get(forge, tenant, dataset_id), labels.apply,
                             forge.storage.datasets.save, f"Dataset {dataset_id}")


def label_model(forge: Forge, tenant: str, version_id: str, labels: Labels) -> ModelVersion:
    model = forge.storage.models.find(tenant, version_id)
    return update_model(forge, tenant, model.domain, version_id, labels.apply)
