#!/usr/bin/env python3
"""Drives the official Python client (`pip install kubernetes`) the way
applications use it, for kcc's healing tests (tests/clients.rs).

    client.py PATTERN KUBECONFIG STATE_DIR

Prints one JSON object: {"ok": n, "failed": [status or error, ...]}.
Every API call is `GET /version` (VersionApi.get_code).

Patterns (one Python process each: one parent process for kcc):
  load3     config.load_kube_config() three times, one call after each
  new3      config.new_client_from_config() three times, one call each
  revoke    load, call; write STATE_DIR/ready and wait for STATE_DIR/go (the
            test revokes the token meanwhile); call again with the same
            client (fails: Python does not re-run the plugin after a 401),
            then reload the config as an application does and call again
"""

import json
import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

pattern, kubeconfig, state = sys.argv[1], sys.argv[2], sys.argv[3]
result = {"ok": 0, "failed": []}


def call(api_client=None):
    try:
        client.VersionApi(api_client).get_code()
        result["ok"] += 1
        return True
    except ApiException as e:
        result["failed"].append(e.status)
    except Exception as e:  # connection errors, plugin failures
        result["failed"].append(type(e).__name__ + ": " + str(e)[:200])
    return False


def wait_for_go():
    open(os.path.join(state, "ready"), "w").close()
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(state, "go")):
        if time.time() > deadline:
            sys.exit("client.py: no go file within 60 s")
        time.sleep(0.05)


if pattern == "load3":
    for _ in range(3):
        config.load_kube_config(config_file=kubeconfig)
        call()
elif pattern == "new3":
    for _ in range(3):
        call(config.new_client_from_config(config_file=kubeconfig))
elif pattern == "revoke":
    config.load_kube_config(config_file=kubeconfig)
    call()
    wait_for_go()
    call()
    config.load_kube_config(config_file=kubeconfig)
    call()
else:
    sys.exit("client.py: unknown pattern " + pattern)
print(json.dumps(result))
