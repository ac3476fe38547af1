# The runtime image on GPU instances (ml.g*, ml.p*): runtime.Dockerfile with PyPI's CUDA build of torch 2.13.0
# (requirements/runtime-gpu.txt), which carries its CUDA libraries; SageMaker's GPU hosts give the driver.
# Built and pushed by `make images ENVIRONMENT=...`.
FROM python:3.11-slim-bookworm
WORKDIR /opt/program
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements/steps.txt requirements/runtime-gpu.txt requirements/
RUN pip install --no-cache-dir -r requirements/steps.txt -r requirements/runtime-gpu.txt
COPY pipelines/sagemaker/container/program.py program.py
ENTRYPOINT ["python3", "/opt/program/program.py"]
