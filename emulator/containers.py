"""A SageMaker job's container contract, run without Docker: the job's folder is mounted at `/opt/ml` in a
private mount namespace (`unshare --mount`, Linux, as root), so the code sees exactly the paths it sees on AWS
(`/opt/ml/processing/...`, `/opt/ml/input/config/*.json`, `/opt/ml/input/data/CHANNEL`, `/opt/ml/model`), and
runs in the project's image as its Dockerfile builds it (emulator.images: its Python and libraries, its files
mounted at its WORKDIR, its ENV and ENTRYPOINT), with S3 on the emulator's moto server.

What each job type does here is what SageMaker does around the container: processing inputs downloaded to
their LocalPath, the ContainerEntrypoint and ContainerArguments run, outputs uploaded; a training job's
config files written and channels downloaded, the image run as `IMAGE train`, `/opt/ml/model` uploaded as
`model.tar.gz` (a failure's reason read from /opt/ml/output/failure); a model unpacked into /opt/ml/model and
its image run as `IMAGE serve`, asked `/ping` until it answers 200, then `/invocations`.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws.requests import download_prefix, s3_location
from foundation.errors import PravahError
from inference.transform_job import payloads
from pipelines.sagemaker.source_archive import Upload

OPT_ML = Path("/opt/ml")
STARTUP_SECONDS = 240  # how long a model's container may take to answer /ping (SageMaker's default health check)


@dataclass(frozen=True)
class BuiltImage:
    """An image of the project's own, as its Dockerfile builds it: a virtualenv of its base image's Python with
    what its `RUN pip install -r` installs, the files its COPY lines put under its WORKDIR, its ENV and its
    ENTRYPOINT."""

    venv: Path
    files: Path
    workdir: str
    environment: dict[str, str]
    entrypoint: list[str]


class JobFailed(PravahError):
    """A job's container failed, as SageMaker would report it (FailureReason)."""


@dataclass
class Runtime:
    """What every job's container gets: the image, the S3 client and endpoint, the region, and the environment
    the host passes on (PRAVAH_DATA_MIRROR stands in for the internet a job downloads from)."""

    image: BuiltImage
    s3: Any
    endpoint_url: str
    region: str

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        passed = {key: os.environ[key] for key in ("HOME", "PRAVAH_DATA_MIRROR", "PIP_CACHE_DIR") if key in os.environ}
        return {
            **passed,
            "PATH": f"{self.image.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "SAGEMAKER_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "emulated",
            "AWS_SECRET_ACCESS_KEY": "emulated",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **self.image.environment,
            **extra,
        }

    def run(
        self,
        root: Path,
        command: list[str],
        extra: dict[str, str],
        log: Path,
        wait: bool = True,
        hosts: tuple[str, ...] = (),
    ) -> subprocess.Popen | int:
        """`command` in the image: its files at its WORKDIR, the job's folder at /opt/ml."""
        return in_container(
            root, command, self.environment(extra), log, wait, hosts, files=(self.image.files, self.image.workdir)
        )


def in_container(
    root: Path,
    command: list[str],
    environment: dict[str, str],
    log: Path,
    wait: bool = True,
    hosts: tuple[str, ...] = (),
    files: tuple[Path, str] | None = None,
) -> subprocess.Popen | int:
    """Run `command` with `root` mounted at /opt/ml, output to `log`; its exit code (or the process). `hosts`
    resolve to this machine, as a training cluster's `algo-N` names resolve in SageMaker's network; `files`
    (a folder, and the image's WORKDIR) are an image's own files, mounted at that path, where the command runs."""
    hosts_file = root.parent / f"{root.name}.hosts"
    hosts_file.write_text(Path("/etc/hosts").read_text() + "".join(f"127.0.0.1 {host}\n" for host in hosts))
    script = 'mount --bind "$1" /opt/ml && mount --bind "$2" /etc/hosts && cd / && shift 4 && exec "$@"'
    if files:
        script = script.replace("cd /", 'mkdir -p "$4" && mount --bind "$3" "$4" && cd "$4"')
    folder, workdir = files or ("", "")
    wrapped = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(root),
        str(hosts_file),
        str(folder),
        workdir,
        *command,
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(wrapped, env=environment, stdout=out, stderr=subprocess.STDOUT)
    return process.wait() if wait else process


def check_namespaces() -> None:
    """Refuse early, and say why, where a job's /opt/ml cannot be mounted."""
    try:
        OPT_ML.mkdir(parents=True, exist_ok=True)
        probe = ["unshare", "--mount", "--propagation", "private", "mount", "--bind", "/tmp", str(OPT_ML)]
        done = subprocess.run(probe, capture_output=True, text=True)
    except OSError as exc:
        raise PravahError(f"the emulator runs each job with its folder mounted at {OPT_ML}: {exc}") from None
    if done.returncode != 0:
        raise PravahError(
            f"the emulator runs each job with its folder mounted at {OPT_ML} in a private mount "
            f"namespace (unshare --mount), which this user cannot do: {done.stderr.strip()} "
            "(run it as root, on Linux)"
        )


def container_path(root: Path, path: str) -> Path:
    """Where a container path under /opt/ml lies on the host."""
    relative = Path(path).relative_to(OPT_ML) if Path(path).is_absolute() else None
    if relative is None or ".." in relative.parts:
        raise JobFailed(f"{path}: SageMaker only mounts data under {OPT_ML}")
    return root / relative


def download(s3, uri: str, destination: Path, share: tuple[int, int] = (0, 1)) -> None:
    """An S3Prefix input, as SageMaker downloads it; an empty one fails the job, as on AWS. `share` (the
    instance's index, the instances) takes every n-th object of the prefix, in key order, as ShardedByS3Key
    gives each instance about 1/n of the objects (an instance may get none when there are fewer objects)."""
    if download_prefix(s3, uri, destination, share) == 0:
        raise JobFailed(f"no object under {uri}: the input is empty (SageMaker fails such a job: ClientError)")


def upload(s3, folder: Path, uri: str) -> None:
    """A job's output folder under its S3 URI, as SageMaker uploads it at the end of the job."""
    bucket = s3_location(uri)[0]
    for key, body in Upload(uri, path=folder).objects():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def run_processing(request: dict[str, Any], root: Path, runtime: Runtime, log: Path) -> None:
    """CreateProcessingJob's contract on each of the job's `InstanceCount` instances, run at once: each has its
    own /opt/ml (under `root/algo-N` when there are several) with `config/resourceconfig.json` (its host and
    the job's hosts) and `config/processingjobconfig.json` (the job), its inputs (every object of a
    FullyReplicated input, its share of a ShardedByS3Key one's), the entrypoint and arguments run, and its
    output folders uploaded under the outputs' S3 URIs, as every instance's are (a file of the same name in
    two instances' outputs is the same object: the last upload wins, as on AWS). One instance's failure is
    the job's."""
    count = request["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
    hosts = [f"algo-{i + 1}" for i in range(count)]
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    app = request["AppSpecification"]
    command = [*(app.get("ContainerEntrypoint") or runtime.image.entrypoint), *app.get("ContainerArguments", [])]
    started = []
    for index, host in enumerate(hosts):
        host_root, host_log = (root, log) if count == 1 else (root / host, log.with_name(f"{log.stem}.{host}.log"))
        config = host_root / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": hosts}))
        (config / "processingjobconfig.json").write_text(json.dumps(request))
        for item in request.get("ProcessingInputs", []):
            source = item["S3Input"]
            share = (index, count) if source.get("S3DataDistributionType") == "ShardedByS3Key" else (0, 1)
            download(runtime.s3, source["S3Uri"], container_path(host_root, source["LocalPath"]), share)
        for item in outputs:
            container_path(host_root, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        process = runtime.run(host_root, command, request.get("Environment", {}), host_log, False, tuple(hosts))
        started.append((host, host_root, host_log, process))
    failed = [(host, code, host_log) for host, _, host_log, process in started if (code := process.wait()) != 0]
    if failed:
        host, code, host_log = failed[0]
        where = "" if count == 1 else f" on {host} ({len(failed)} of {count} instances failed)"
        raise JobFailed(f"AlgorithmError: the container exited with {code}{where}:\n{tail(host_log)}")
    for _, host_root, _, _ in started:
        for item in outputs:
            upload(runtime.s3, container_path(host_root, item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])


def run_training(request: dict[str, Any], root: Path, runtime: Runtime, log: Path) -> str:
    """CreateTrainingJob's contract for a bring-your-own container: config files and channels under
    /opt/ml/input, the image run as `IMAGE train`, then /opt/ml/model uploaded as model.tar.gz. Returns the
    model's S3 URI."""
    name, resources = request["TrainingJobName"], request["ResourceConfig"]
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
    hosts = [f"algo-{i + 1}" for i in range(resources["InstanceCount"])]
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": hosts[0],
                "current_instance_type": resources["InstanceType"],
                "current_group_name": "homogeneousCluster",
                "hosts": hosts,
                "network_interface_name": "eth0",
                "instance_groups": [
                    {
                        "instance_group_name": "homogeneousCluster",
                        "instance_type": resources["InstanceType"],
                        "hosts": hosts,
                    }
                ],
            }
        )
    )
    mode = request["AlgorithmSpecification"].get("TrainingInputMode", "File")
    channels = {}
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        channels[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
        download(runtime.s3, source["S3Uri"], root / "input" / "data" / channel["ChannelName"])
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    for folder in ("model", "output/data", "code"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    extra = {"TRAINING_JOB_NAME": name, **request.get("Environment", {})}
    code = runtime.run(root, [*runtime.image.entrypoint, "train"], extra, log, hosts=tuple(hosts))
    failure = root / "output" / "failure"
    if code != 0 or failure.is_file():
        reason = failure.read_text()[-2000:] if failure.is_file() else tail(log)
        raise JobFailed(f"AlgorithmError: the container exited with {code}: {reason}\n{tail(log)}")
    output = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output"
    put_tarball(runtime.s3, root / "model", f"{output}/model.tar.gz")
    put_tarball(runtime.s3, root / "output" / "data", f"{output}/output.tar.gz")
    return f"{output}/model.tar.gz"


def put_tarball(s3, folder: Path, uri: str) -> None:
    """A folder as SageMaker archives /opt/ml/model: its files at the archive's top."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    bucket, key = s3_location(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())


def serve(container: dict[str, Any], root: Path, runtime: Runtime, log: Path) -> tuple[subprocess.Popen, str]:
    """The model's container, as SageMaker starts it for an endpoint or a transform job: model.tar.gz unpacked
    into /opt/ml/model, the image run as `IMAGE serve` with the container's Environment, asked `/ping` until it
    answers 200. Returns the server and its address (its port: SAGEMAKER_BIND_TO_PORT, here one it picks)."""
    import urllib.error
    import urllib.request

    bucket, key = s3_location(container["ModelDataUrl"])
    model = root / "model"
    model.mkdir(parents=True)
    body = runtime.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        archive.extractall(model, filter="data")
    extra = {**container.get("Environment", {}), "SAGEMAKER_BIND_TO_PORT": "0"}
    start = log.stat().st_size if log.is_file() else 0
    process = runtime.run(root, [*runtime.image.entrypoint, "serve"], extra, log, wait=False)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"on port (\d+)", log.read_text(errors="replace")[start:]) if log.is_file() else None
        if found:
            address = f"http://127.0.0.1:{found[1]}"
            try:
                with urllib.request.urlopen(f"{address}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        return process, address
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise JobFailed(f"the model's container did not answer /ping with 200 in {STARTUP_SECONDS} s:\n{tail(log)}")


def run_transform(
    request: dict[str, Any], container: dict[str, Any], root: Path, runtime: Runtime, log: Path
) -> list[str]:
    """A Batch Transform job around the model's container, as SageMaker runs one with SplitType Line and
    BatchStrategy MultiRecord: each object under the input prefix split into lines, sent as requests of at
    most MaxPayloadInMB with the job's ContentType and Accept, the answers joined a line each (AssembleWith
    Line) into OBJECT.out under the output path. An answer of fewer or more lines than it was sent fails the
    job. The output objects' URIs."""
    import urllib.error
    import urllib.request

    server, address = serve(container, root, runtime, log)
    source, output = request["TransformInput"], request["TransformOutput"]
    bucket, prefix = s3_location(source["DataSource"]["S3DataSource"]["S3Uri"])
    out_bucket, out_prefix = s3_location(output["S3OutputPath"])
    limit, written = request["MaxPayloadInMB"] * 1024 * 1024, []
    headers = {"Content-Type": source["ContentType"], "Accept": output["Accept"]}
    try:
        for page in runtime.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                lines = runtime.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines()
                answers = []
                for payload in payloads(lines, limit):
                    call = urllib.request.Request(
                        f"{address}/invocations", data="\n".join(payload).encode(), headers=headers
                    )
                    try:
                        with urllib.request.urlopen(call, timeout=600) as answer:
                            answered = answer.read().decode()
                    except urllib.error.HTTPError as exc:
                        raise JobFailed(
                            f"{item['Key']}: /invocations answered {exc.code}: {exc.read()[:2000].decode()}"
                        ) from None
                    if len(answered.splitlines()) != len(payload):
                        raise JobFailed(
                            f"{item['Key']}: {len(payload)} records sent, {len(answered.splitlines())} lines answered"
                        )
                    answers.append(answered)
                name = item["Key"][len(prefix) :].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
                key = f"{out_prefix.rstrip('/')}/{name}.out".lstrip("/")
                runtime.s3.put_object(Bucket=out_bucket, Key=key, Body="".join(a + "\n" for a in answers).encode())
                written.append(f"s3://{out_bucket}/{key}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return written


def tail(log: Path | str, lines: int = 25) -> str:
    """The last lines of a log (a file or its text), without pip's notes about this machine's index config."""
    text = log if isinstance(log, str) else log.read_text(errors="replace") if log.is_file() else ""
    kept = [line for line in text.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
    return "\n".join(kept[-lines:])
