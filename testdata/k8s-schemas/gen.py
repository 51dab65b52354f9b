#!/usr/bin/env python3
"""Writes the JSON schemas hack/validate-manifests.sh gives kubeconform.

No schema can be downloaded on the build machines, so they are vendored here,
written from the published definitions and kept strict: every object lists
its properties and forbids others, so a misspelt field fails validation
instead of being silently dropped by the API server.

  ClusterStorageContainer  from KServe's CRD openAPIV3Schema (config/crd/full/
                           serving.kserve.io_clusterstoragecontainers.yaml), plus
                           supportsMultiModelDownload (newer KServe); container
                           fields this repo does not use keep only their type.
                           No objectSelector: KServe 0.20 has none, the API
                           server would prune it.
  InferenceService         minimal: only the v1beta1 fields config/ uses (the
                           full CRD is several MB); extend it when a manifest
                           needs more.
  LLMInferenceService      minimal, v1alpha2 (KServe 0.20 llm_inference_service_
                           types.go): model, replicas, template, router.scheduler.
                           template; templates are pod specs without required
                           containers (the CRD requires none there).
  LocalModelCache,         v1alpha1 (local_model_cache_types.go,
  LocalModelNodeGroup      local_model_node_group_types.go), with the
                           PersistentVolume/Claim spec fields config/ uses.
  ConfigMap                Kubernetes core/v1, complete.
  Secret, ServiceAccount   Kubernetes core/v1, complete.
  DaemonSet                apps/v1, the pod fields config/ uses in full, the
                           rest by type.
  ValidatingAdmissionPolicy, admissionregistration.k8s.io/v1 (Kubernetes >= 1.30),
  ...PolicyBinding         complete (k8s.io/api/admissionregistration/v1).

Run it after editing: python3 testdata/k8s-schemas/gen.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

QUANTITY = {
    "anyOf": [
        {"type": "integer"},
        {"type": "string", "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"},
    ]
}
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
OBJ = {"type": "object"}
ARR = {"type": "array"}


def strs():
    return {"type": "array", "items": STR}


def smap():
    return {"type": "object", "additionalProperties": STR}


def obj(props, required=()):
    o = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        o["required"] = list(required)
    return o


def arr(items):
    return {"type": "array", "items": items}


OBJECT_META = obj({
    "annotations": smap(), "labels": smap(), "name": STR, "namespace": STR, "generateName": STR,
    "finalizers": strs(), "ownerReferences": arr(OBJ), "managedFields": arr(OBJ),
    "creationTimestamp": {"type": ["string", "null"]}, "deletionTimestamp": STR,
    "deletionGracePeriodSeconds": INT, "generation": INT, "resourceVersion": STR, "selfLink": STR, "uid": STR,
})

KEY_REF = obj({"key": STR, "name": STR, "optional": BOOL}, ["key"])
ENV_VAR = obj({
    "name": STR, "value": STR,
    "valueFrom": obj({
        "configMapKeyRef": KEY_REF, "secretKeyRef": KEY_REF,
        "fieldRef": obj({"apiVersion": STR, "fieldPath": STR}, ["fieldPath"]),
        "resourceFieldRef": obj({"containerName": STR, "divisor": QUANTITY, "resource": STR}, ["resource"]),
    }),
}, ["name"])
ENV_FROM = obj({
    "configMapRef": obj({"name": STR, "optional": BOOL}), "prefix": STR,
    "secretRef": obj({"name": STR, "optional": BOOL}),
})
RESOURCES = obj({
    "claims": arr(obj({"name": STR, "request": STR}, ["name"])),
    "limits": {"type": "object", "additionalProperties": QUANTITY},
    "requests": {"type": "object", "additionalProperties": QUANTITY},
})
SECURITY_CONTEXT = obj({
    "allowPrivilegeEscalation": BOOL,
    "appArmorProfile": obj({"localhostProfile": STR, "type": STR}, ["type"]),
    "capabilities": obj({"add": strs(), "drop": strs()}),
    "privileged": BOOL, "procMount": STR, "readOnlyRootFilesystem": BOOL,
    "runAsGroup": INT, "runAsNonRoot": BOOL, "runAsUser": INT,
    "seLinuxOptions": obj({"level": STR, "role": STR, "type": STR, "user": STR}),
    "seccompProfile": obj({"localhostProfile": STR, "type": {"type": "string", "enum": ["RuntimeDefault", "Localhost", "Unconfined"]}}, ["type"]),
    "windowsOptions": obj({"gmsaCredentialSpec": STR, "gmsaCredentialSpecName": STR, "hostProcess": BOOL, "runAsUserName": STR}),
})
VOLUME_MOUNT = obj({
    "mountPath": STR, "mountPropagation": STR, "name": STR, "readOnly": BOOL,
    "recursiveReadOnly": STR, "subPath": STR, "subPathExpr": STR,
}, ["mountPath", "name"])
CONTAINER = obj({
    "args": strs(), "command": strs(), "env": arr(ENV_VAR), "envFrom": arr(ENV_FROM),
    "image": STR, "imagePullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    "lifecycle": OBJ, "livenessProbe": OBJ, "readinessProbe": OBJ, "startupProbe": OBJ,
    "name": STR, "ports": arr(OBJ), "resizePolicy": arr(OBJ), "resources": RESOURCES,
    "restartPolicy": STR, "securityContext": SECURITY_CONTEXT, "stdin": BOOL, "stdinOnce": BOOL,
    "terminationMessagePath": STR,
    "terminationMessagePolicy": {"type": "string", "enum": ["File", "FallbackToLogsOnError"]},
    "tty": BOOL, "volumeDevices": arr(OBJ), "volumeMounts": arr(VOLUME_MOUNT), "workingDir": STR,
}, ["name"])
VOLUME = obj({
    "name": STR,
    "hostPath": obj({"path": STR, "type": {"type": "string", "enum": [
        "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"]}}, ["path"]),
    "emptyDir": obj({"medium": STR, "sizeLimit": QUANTITY}),
    "persistentVolumeClaim": obj({"claimName": STR, "readOnly": BOOL}, ["claimName"]),
    "configMap": OBJ, "secret": OBJ, "projected": OBJ, "csi": OBJ, "ephemeral": OBJ, "image": OBJ,
}, ["name"])
LABEL_SELECTOR = obj({
    "matchExpressions": arr(obj({"key": STR, "operator": STR, "values": strs()}, ["key", "operator"])),
    "matchLabels": smap(),
})
POD_SPEC = obj({
    "containers": arr(CONTAINER), "initContainers": arr(CONTAINER), "volumes": arr(VOLUME),
    "serviceAccountName": STR, "automountServiceAccountToken": BOOL, "nodeSelector": smap(),
    "tolerations": arr(OBJ), "affinity": OBJ, "priorityClassName": STR, "securityContext": OBJ,
    "imagePullSecrets": arr(obj({"name": STR})), "terminationGracePeriodSeconds": INT,
    "hostNetwork": BOOL, "hostPID": BOOL, "dnsPolicy": STR, "restartPolicy": STR,
}, ["containers"])


def kind(api_version, kind_name, props, required=()):
    s = obj(dict({"apiVersion": {"type": "string", "enum": [api_version]},
                  "kind": {"type": "string", "enum": [kind_name]},
                  "metadata": OBJECT_META}, **props), ["apiVersion", "kind", "metadata"] + list(required))
    s["$schema"] = "http://json-schema.org/draft-07/schema#"
    s["description"] = f"{kind_name} ({api_version}); see testdata/k8s-schemas/gen.py for the source"
    return s


SCHEMAS = {
    "v1/secret_v1.json": kind("v1", "Secret", {
        "data": {"type": "object", "additionalProperties": {"type": "string", "contentEncoding": "base64"}},
        "immutable": BOOL, "stringData": smap(), "type": STR,
    }),
    "v1/serviceaccount_v1.json": kind("v1", "ServiceAccount", {
        "automountServiceAccountToken": BOOL,
        "imagePullSecrets": arr(obj({"name": STR})),
        "secrets": arr(obj({"apiVersion": STR, "fieldPath": STR, "kind": STR, "name": STR,
                            "namespace": STR, "resourceVersion": STR, "uid": STR})),
    }),
    "apps/daemonset_v1.json": kind("apps/v1", "DaemonSet", {
        "spec": obj({
            "minReadySeconds": INT, "revisionHistoryLimit": INT, "selector": LABEL_SELECTOR,
            "template": obj({"metadata": OBJECT_META, "spec": POD_SPEC}),
            "updateStrategy": OBJ,
        }, ["selector", "template"]),
        "status": OBJ,
    }, ["spec"]),
    "serving.kserve.io/clusterstoragecontainer_v1alpha1.json": kind("serving.kserve.io/v1alpha1", "ClusterStorageContainer", {
        "disabled": BOOL,
        "spec": obj({
            "container": CONTAINER,
            "supportedUriFormats": arr(obj({"prefix": STR, "regex": STR})),
            "supportsMultiModelDownload": BOOL,
            "workloadType": {"type": "string", "enum": ["initContainer", "localModelDownloadJob"]},
        }, ["container", "supportedUriFormats"]),
    }, ["spec"]),
    "serving.kserve.io/inferenceservice_v1beta1.json": kind("serving.kserve.io/v1beta1", "InferenceService", {
        "spec": obj({
            "predictor": obj({
                "serviceAccountName": STR, "minReplicas": INT, "maxReplicas": INT,
                "storageContainerName": STR,
                "labels": smap(), "annotations": smap(), "volumes": arr(VOLUME),
                "model": obj({
                    "modelFormat": obj({"name": STR, "version": STR}, ["name"]),
                    "runtime": STR, "storageUri": STR, "protocolVersion": STR,
                    "args": strs(), "env": arr(ENV_VAR), "resources": RESOURCES,
                }, ["modelFormat"]),
            }),
        }, ["predictor"]),
        "status": OBJ,
    }, ["spec"]),
}

POD_TEMPLATE_SPEC = dict(POD_SPEC)
POD_TEMPLATE_SPEC.pop("required")
NODE_SELECTOR = obj({"nodeSelectorTerms": arr(obj({
    "matchExpressions": arr(obj({"key": STR, "operator": STR, "values": strs()}, ["key", "operator"])),
    "matchFields": arr(obj({"key": STR, "operator": STR, "values": strs()}, ["key", "operator"])),
}))}, ["nodeSelectorTerms"])
ACCESS_MODES = arr({"type": "string", "enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]})
VOLUME_MODE = {"type": "string", "enum": ["Filesystem", "Block"]}
PV_SPEC = obj({
    "accessModes": ACCESS_MODES, "capacity": {"type": "object", "additionalProperties": QUANTITY},
    "local": obj({"path": STR, "fsType": STR}, ["path"]),
    "hostPath": obj({"path": STR, "type": STR}, ["path"]),
    "csi": OBJ, "nfs": OBJ, "claimRef": OBJ, "mountOptions": strs(),
    "nodeAffinity": obj({"required": NODE_SELECTOR}),
    "persistentVolumeReclaimPolicy": {"type": "string", "enum": ["Retain", "Recycle", "Delete"]},
    "storageClassName": STR, "volumeMode": VOLUME_MODE,
})
PVC_SPEC = obj({
    "accessModes": ACCESS_MODES, "dataSource": OBJ, "dataSourceRef": OBJ,
    "resources": obj({"limits": {"type": "object", "additionalProperties": QUANTITY},
                      "requests": {"type": "object", "additionalProperties": QUANTITY}}),
    "selector": LABEL_SELECTOR, "storageClassName": STR, "volumeAttributesClassName": STR,
    "volumeMode": VOLUME_MODE, "volumeName": STR,
})
SCHEMAS.update({
    "v1/configmap_v1.json": kind("v1", "ConfigMap", {
        "data": smap(), "binaryData": smap(), "immutable": BOOL,
    }),
    "serving.kserve.io/llminferenceservice_v1alpha2.json": kind("serving.kserve.io/v1alpha2", "LLMInferenceService", {
        "spec": obj({
            "model": obj({
                "uri": STR, "name": STR,
                "confidential": obj({"enabled": BOOL, "resourceId": STR}, ["enabled"]),
            }, ["uri"]),
            "storageInitializer": obj({"enabled": BOOL}),
            "replicas": INT, "labels": smap(), "annotations": smap(),
            "template": POD_TEMPLATE_SPEC, "worker": POD_TEMPLATE_SPEC,
            "router": obj({
                "scheduler": obj({"template": POD_TEMPLATE_SPEC, "replicas": INT, "pool": OBJ, "config": OBJ}),
                "route": OBJ, "gateway": OBJ,
            }),
            "baseRefs": arr(obj({"name": STR})),
        }),
        "status": OBJ,
    }, ["spec"]),
    "serving.kserve.io/localmodelcache_v1alpha1.json": kind("serving.kserve.io/v1alpha1", "LocalModelCache", {
        "spec": obj({
            "sourceModelUri": STR, "modelSize": QUANTITY, "nodeGroups": {"type": "array", "items": STR, "minItems": 1},
            "serviceAccountName": STR,
            "storage": obj({"key": STR, "parameters": smap()}),
        }, ["sourceModelUri", "modelSize", "nodeGroups"]),
        "status": OBJ,
    }, ["spec"]),
    "serving.kserve.io/localmodelnodegroup_v1alpha1.json": kind("serving.kserve.io/v1alpha1", "LocalModelNodeGroup", {
        "spec": obj({
            "storageLimit": QUANTITY, "persistentVolumeSpec": PV_SPEC, "persistentVolumeClaimSpec": PVC_SPEC,
        }, ["storageLimit", "persistentVolumeSpec", "persistentVolumeClaimSpec"]),
        "status": OBJ,
    }, ["spec"]),
})

RESOURCE_RULE = obj({
    "apiGroups": strs(), "apiVersions": strs(),
    "operations": arr({"type": "string", "enum": ["*", "CREATE", "UPDATE", "DELETE", "CONNECT"]}),
    "resources": strs(), "resourceNames": strs(),
    "scope": {"type": "string", "enum": ["*", "Cluster", "Namespaced"]},
})
MATCH_RESOURCES = obj({
    "namespaceSelector": LABEL_SELECTOR, "objectSelector": LABEL_SELECTOR,
    "resourceRules": arr(RESOURCE_RULE), "excludeResourceRules": arr(RESOURCE_RULE),
    "matchPolicy": {"type": "string", "enum": ["Exact", "Equivalent"]},
})
SCHEMAS.update({
    "admissionregistration.k8s.io/validatingadmissionpolicy_v1.json": kind(
        "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", {
            "spec": obj({
                "paramKind": obj({"apiVersion": STR, "kind": STR}),
                "matchConstraints": MATCH_RESOURCES,
                "validations": arr(obj({"expression": STR, "message": STR, "messageExpression": STR,
                                        "reason": STR}, ["expression"])),
                "failurePolicy": {"type": "string", "enum": ["Ignore", "Fail"]},
                "auditAnnotations": arr(obj({"key": STR, "valueExpression": STR}, ["key", "valueExpression"])),
                "matchConditions": arr(obj({"name": STR, "expression": STR}, ["name", "expression"])),
                "variables": arr(obj({"name": STR, "expression": STR}, ["name", "expression"])),
            }),
            "status": OBJ,
        }, ["spec"]),
    "admissionregistration.k8s.io/validatingadmissionpolicybinding_v1.json": kind(
        "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", {
            "spec": obj({
                "policyName": STR,
                "paramRef": obj({"name": STR, "namespace": STR, "selector": LABEL_SELECTOR,
                                 "parameterNotFoundAction": {"type": "string", "enum": ["Allow", "Deny"]}}),
                "matchResources": MATCH_RESOURCES,
                "validationActions": arr({"type": "string", "enum": ["Deny", "Warn", "Audit"]}),
            }),
        }, ["spec"]),
})

for name, schema in SCHEMAS.items():
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
        f.write("\n")
