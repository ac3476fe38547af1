# The monitoring image: the container of each endpoint's monitoring pipeline, which `pravah schedule deploy` and
# `pravah template` create and EventBridge starts (ContainerEntrypoint python3 -m monitoring.scheduled: the drift
# job over the window's captures, then CloudWatch metrics, an SNS alert and retraining on a violation).
# Built from the repository's root and pushed to the environment's `monitoring_image` (ECR):
#   make monitoring-image ENVIRONMENT=prod
# `pravah pipeline emulate` runs the job as this file builds it (FROM, WORKDIR, ENV, COPY and RUN pip install
# are read; any other instruction is refused), so a module or library left out here fails there too.
FROM python:3.11-slim-bookworm
WORKDIR /opt/program
ENV PYTHONPATH=/opt/program PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements/monitoring.txt requirements/monitoring.txt
RUN pip install --no-cache-dir -r requirements/monitoring.txt
COPY monitoring monitoring
COPY steps/__init__.py steps/profile.py steps/instances.py steps/
COPY artifact/__init__.py artifact/text.py artifact/
ENTRYPOINT ["python3", "-m", "monitoring.scheduled"]
