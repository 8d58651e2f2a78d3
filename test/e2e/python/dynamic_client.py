"""
The official Kubernetes Python client (Debian's python3-kubernetes) against `stratus serve`:
dynamic-client CRUD on an Instance (a stratus CRD) and a ConfigMap, a watch that sees
ADDED/MODIFIED/DELETED, server-side apply with a field manager (and its conflict), and 4xx
errors surfaced as ApiException carrying the Kubernetes Status body.

Usage: dynamic_client.py KUBECONFIG WORKDIR. Prints one JSON object (the observations) as its
last line; the TypeScript test asserts on it. Exits non-zero on an unexpected error.
"""
import json
import os
import sys
import threading

from kubernetes import config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

kubeconfig, workdir = sys.argv[1], sys.argv[2]
NS = 'default'
out = {}

dyn = DynamicClient(config.new_client_from_config(config_file=kubeconfig),
                    cache_file=os.path.join(workdir, 'discovery.json'))
configmaps = dyn.resources.get(api_version='v1', kind='ConfigMap')
instances = dyn.resources.get(api_version='compute.stratus.dev/v1alpha1', kind='Instance')


def status_of(err):
    body = json.loads(err.body)
    return {'http': err.status, 'kind': body.get('kind'), 'reason': body.get('reason'),
            'code': body.get('code'), 'message': body.get('message'),
            'causes': [c.get('field') for c in (body.get('details') or {}).get('causes') or []],
            'isApiException': isinstance(err, ApiException)}


# --- a watch on ConfigMaps, started from the list's resourceVersion so no change is missed ---
start_rv = configmaps.get(namespace=NS).metadata.resourceVersion
events = []
watch_error = []
watcher = watch.Watch()
watch_ready = threading.Event()


def run_watch():
    try:
        watch_ready.set()
        for ev in configmaps.watch(namespace=NS, resource_version=start_rv, timeout=30, watcher=watcher):
            obj = ev['raw_object']
            if obj['metadata']['name'] != 'py-cm':
                continue
            events.append({'type': ev['type'], 'data': obj.get('data')})
            if ev['type'] == 'DELETED':
                watcher.stop()
    except Exception as e:  # reported, and the test fails on it
        watch_error.append(repr(e))


t = threading.Thread(target=run_watch)
t.start()
watch_ready.wait()

# --- ConfigMap CRUD ---
cm = configmaps.create(namespace=NS, body={'apiVersion': 'v1', 'kind': 'ConfigMap',
                                           'metadata': {'name': 'py-cm', 'labels': {'suite': 'python'}},
                                           'data': {'a': '1'}})
got = configmaps.get(name='py-cm', namespace=NS)
replaced = configmaps.replace(namespace=NS, body={'apiVersion': 'v1', 'kind': 'ConfigMap',
                                                  'metadata': {'name': 'py-cm', 'labels': {'suite': 'python'},
                                                               'resourceVersion': got.metadata.resourceVersion},
                                                  'data': {'a': '2'}})
patched = configmaps.patch(name='py-cm', namespace=NS, body={'data': {'b': '3'}},
                           content_type='application/merge-patch+json')
listed = configmaps.get(namespace=NS, label_selector='suite=python')
try:
    configmaps.replace(namespace=NS, body={'apiVersion': 'v1', 'kind': 'ConfigMap',
                                           'metadata': {'name': 'py-cm', 'resourceVersion': got.metadata.resourceVersion},
                                           'data': {'a': 'stale'}})
    out['staleReplace'] = 'accepted'
except ApiException as e:
    out['staleReplace'] = status_of(e)
configmaps.delete(name='py-cm', namespace=NS)
t.join(40)
out['configmap'] = {
    'created': cm.data.a, 'got': got.data.a, 'replaced': replaced.data.a,
    'patched': dict(patched.data), 'listed': [i.metadata.name for i in listed.items],
}
out['watch'] = {'events': events, 'error': watch_error, 'finished': not t.is_alive()}

# --- Instance CRUD (a CustomResourceDefinition kind) ---
spec = {'provider': 'docker', 'image': 'busybox', 'cpus': 1, 'memoryMiB': 128}
inst = instances.create(namespace=NS, body={'apiVersion': 'compute.stratus.dev/v1alpha1', 'kind': 'Instance',
                                            'metadata': {'name': 'py-vm'}, 'spec': spec})
inst_patched = instances.patch(name='py-vm', namespace=NS, body={'spec': {'cpus': 2}},
                               content_type='application/merge-patch+json')
inst_got = instances.get(name='py-vm', namespace=NS)
body = inst_got.to_dict()
body['spec']['memoryMiB'] = 256
inst_replaced = instances.replace(namespace=NS, body=body)
inst_list = instances.get(namespace=NS)
instances.delete(name='py-vm', namespace=NS)
try:
    instances.get(name='py-vm', namespace=NS)
    out['getDeleted'] = 'found'
except ApiException as e:
    out['getDeleted'] = status_of(e)
out['instance'] = {
    'createdGeneration': inst.metadata.generation, 'patchedCpus': inst_patched.spec.cpus,
    'patchedGeneration': inst_patched.metadata.generation, 'replacedMemory': inst_replaced.spec.memoryMiB,
    'listed': [i.metadata.name for i in inst_list.items],
}

# --- server-side apply ---
APPLY = 'application/apply-patch+yaml'


def manifest(cpus):
    # JSON is YAML; the client sends a str body as it is.
    return json.dumps({'apiVersion': 'compute.stratus.dev/v1alpha1', 'kind': 'Instance',
                       'metadata': {'name': 'py-applied', 'namespace': NS},
                       'spec': {'provider': 'docker', 'image': 'busybox', 'cpus': cpus, 'memoryMiB': 128}})


first = instances.patch(name='py-applied', namespace=NS, body=manifest(1), content_type=APPLY, field_manager='python-e2e')
second = instances.patch(name='py-applied', namespace=NS, body=manifest(3), content_type=APPLY, field_manager='python-e2e')
try:
    instances.patch(name='py-applied', namespace=NS, body=manifest(4), content_type=APPLY, field_manager='someone-else')
    out['applyConflict'] = 'accepted'
except ApiException as e:
    out['applyConflict'] = status_of(e)
forced = instances.server_side_apply(name='py-applied', namespace=NS, body=manifest(4),
                                     field_manager='someone-else', force_conflicts=True)
out['apply'] = {
    'firstGeneration': first.metadata.generation, 'secondCpus': second.spec.cpus,
    'secondGeneration': second.metadata.generation,
    'managers': sorted((m.manager, m.operation) for m in second.metadata.managedFields),
    'forcedCpus': forced.spec.cpus,
    'forcedManagers': sorted((m.manager, m.operation) for m in forced.metadata.managedFields),
}

# --- 4xx errors as ApiException with the Status body ---
try:
    instances.get(name='does-not-exist', namespace=NS)
    out['notFound'] = 'found'
except ApiException as e:
    out['notFound'] = status_of(e)
try:
    instances.create(namespace=NS, body={'apiVersion': 'compute.stratus.dev/v1alpha1', 'kind': 'Instance',
                                         'metadata': {'name': 'py-bad'},
                                         'spec': {'provider': 'docker', 'image': 'busybox', 'cpus': 'lots', 'memoryMiB': 128}})
    out['invalid'] = 'accepted'
except ApiException as e:
    out['invalid'] = status_of(e)

print(json.dumps(out))
