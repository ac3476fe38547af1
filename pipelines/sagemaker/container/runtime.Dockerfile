# The runtime image (CPU instances): processing steps, training jobs, and the registered models' endpoints and
# Batch Transform jobs. Python 3.11 (the code's) with exactly the lock's versions of what step, training and
# serving code imports (requirements/steps.txt) and torch's CPU build (requirements/runtime-cpu.txt); the
# project's code comes with each job (the source archive; the model's code/ folder), so the image changes only
# when a library does. SageMaker runs `train` and `serve` through program.py, its entry (bring-your-own-container).
# Built and pushed by `make images ENVIRONMENT=...`, tagged with the digest of what the build reads (aws/images.py).
# `pravah pipeline emulate` runs jobs on this file as it builds (FROM, WORKDIR, ENV, COPY, RUN pip install -r and
# ENTRYPOINT are read; any other instruction is refused), so a library left out here fails there too.
FROM python:3.11-slim-bookworm
WORKDIR /opt/program
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements/steps.txt requirements/runtime-cpu.txt requirements/
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements/steps.txt -r requirements/runtime-cpu.txt
COPY pipelines/sagemaker/container/program.py program.py
ENTRYPOINT ["python3", "/opt/program/program.py"]
