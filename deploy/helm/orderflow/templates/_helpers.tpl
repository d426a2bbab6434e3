{{/* Names, labels and the pieces every workload shares. */}}

{{- define "orderflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "component" "order-command"). */}}
{{- define "orderflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "orderflow.selectorLabels" . }}
{{- end -}}

{{- define "orderflow.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* The image of a component; call with (dict "root" $ "image" .Values.orderCommand.image). */}}
{{- define "orderflow.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "orderflow.topologyName" -}}
{{- .Values.topology.existingSecret | default .Values.topology.existingConfigMap | default (printf "%s-topology" (include "orderflow.fullname" .)) -}}
{{- end -}}

{{/* Whether the topology volume is a Secret. */}}
{{- define "orderflow.topologyIsSecret" -}}
{{- if or .Values.topology.existingSecret (and .Values.topology.secret (not .Values.topology.existingConfigMap)) }}true{{ end -}}
{{- end -}}

{{/* The topology JSON the chart renders (shared/shard reads it strictly: shards and epochs only). */}}
{{- define "orderflow.topologyJSON" -}}
{{- dict "shards" .Values.topology.shards "epochs" .Values.topology.epochs | toJson -}}
{{- end -}}

{{/*
The topology volume. The whole directory is mounted, never a subPath: the
kubelet swaps a ConfigMap's or Secret's files in place only in a directory
mount, and that swap is what the services' reload picks up.
*/}}
{{- define "orderflow.topologyVolume" -}}
- name: topology
{{- if include "orderflow.topologyIsSecret" .root }}
  secret:
    secretName: {{ .name }}
{{- else }}
  configMap:
    name: {{ .name }}
{{- end }}
{{- end -}}

{{- define "orderflow.topologyFile" -}}
{{- printf "%s/topology.json" .Values.topology.mountPath -}}
{{- end -}}

{{- define "orderflow.mongoSecretName" -}}
{{- .Values.mongo.existingSecret | default (printf "%s-mongo" (include "orderflow.fullname" .)) -}}
{{- end -}}

{{- define "orderflow.mongoSecretKey" -}}
{{- if .Values.mongo.existingSecret }}{{ .Values.mongo.existingSecretKey }}{{ else }}uri{{ end -}}
{{- end -}}

{{- define "orderflow.adminTokenSecretName" -}}
{{- .Values.adminToken.existingSecret | default (printf "%s-admin-token" (include "orderflow.fullname" .)) -}}
{{- end -}}

{{- define "orderflow.adminTokenSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}{{ .Values.adminToken.existingSecretKey }}{{ else }}token{{ end -}}
{{- end -}}

{{- define "orderflow.jwksConfigMapName" -}}
{{- .Values.auth.existingConfigMap | default (printf "%s-jwks" (include "orderflow.fullname" .)) -}}
{{- end -}}

{{/* "true" when the services read the JWK Set from the mounted ConfigMap. */}}
{{- define "orderflow.jwksMounted" -}}
{{- if and (not .Values.auth.disabled) (or .Values.auth.jwks .Values.auth.existingConfigMap) }}true{{ end -}}
{{- end -}}

{{/*
The ORDERFLOW_AUTH_* variables of a service that verifies tokens. Call
with a dict: root, and placeOrder (true for order-command, the one
service with a PlaceOrder limit).
*/}}
{{- define "orderflow.authEnv" -}}
{{- $a := .root.Values.auth -}}
{{- if $a.disabled }}
- name: ORDERFLOW_AUTH_DISABLED
  value: "true"
{{- else }}
{{- if $a.jwksUrl }}
- name: ORDERFLOW_AUTH_JWKS_URL
  value: {{ $a.jwksUrl | quote }}
{{- else }}
- name: ORDERFLOW_AUTH_JWKS_FILE
  value: {{ printf "%s/jwks.json" $a.mountPath | quote }}
{{- end }}
- name: ORDERFLOW_AUTH_ISSUER
  value: {{ $a.issuer | quote }}
- name: ORDERFLOW_AUTH_AUDIENCE
  value: {{ $a.audience | quote }}
- name: ORDERFLOW_AUTH_LEEWAY
  value: {{ $a.leeway | quote }}
{{- if .placeOrder }}
- name: ORDERFLOW_AUTH_PLACE_ORDER_RATE
  value: {{ $a.placeOrder.rate | quote }}
- name: ORDERFLOW_AUTH_PLACE_ORDER_BURST
  value: {{ $a.placeOrder.burst | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ORDERFLOW_* variables from a component's config map (names without the prefix). */}}
{{- define "orderflow.extraConfig" -}}
{{- range $name, $value := . }}
- name: {{ printf "ORDERFLOW_%s" $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The container security context of every container. */}}
{{- define "orderflow.securityContext" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/*
Checks across values that a schema cannot express. Rendered by every
template that depends on them, so `helm template` and `helm install` stop
with the message before anything is applied.
*/}}
{{- define "orderflow.validate" -}}
{{- $partitions := int .Values.kafka.partitions -}}
{{- if lt $partitions 1 -}}
{{- fail "kafka.partitions must be at least 1" -}}
{{- end -}}
{{- if gt (int .Values.orderProjector.replicas) $partitions -}}
{{- fail (printf "orderProjector.replicas (%d) must not exceed kafka.partitions (%d): a consumer group gives each partition to one member, so the others would sit idle" (int .Values.orderProjector.replicas) $partitions) -}}
{{- end -}}
{{- if lt (int .Values.outboxRelay.replicas) 2 -}}
{{- fail (printf "outboxRelay.replicas (%d) must be at least 2: a killed relay's shards are taken over only by another relay" (int .Values.outboxRelay.replicas)) -}}
{{- end -}}
{{- $jwksSources := 0 -}}
{{- range (list .Values.auth.jwks .Values.auth.existingConfigMap .Values.auth.jwksUrl) }}{{ if . }}{{ $jwksSources = add1 $jwksSources }}{{ end }}{{ end -}}
{{- if and .Values.auth.disabled (gt $jwksSources 0) -}}
{{- fail "auth.disabled is true but a JWK Set is given too: turn authentication off or give its keys, not both" -}}
{{- end -}}
{{- if and (not .Values.auth.disabled) (ne $jwksSources 1) -}}
{{- fail (printf "auth needs exactly one of auth.jwks, auth.existingConfigMap and auth.jwksUrl (%d given), or auth.disabled=true: the services refuse to start without a JWK Set" $jwksSources) -}}
{{- end -}}
{{- if and .Values.topology.existingSecret .Values.topology.existingConfigMap -}}
{{- fail "topology.existingSecret and topology.existingConfigMap are exclusive" -}}
{{- end -}}
{{- if and (not .Values.topology.existingSecret) (not .Values.topology.existingConfigMap) (or (empty .Values.topology.shards) (empty .Values.topology.epochs)) -}}
{{- fail "topology.shards and topology.epochs are required unless topology.existingSecret or topology.existingConfigMap is set" -}}
{{- end -}}
{{- if and (not .Values.mongo.existingSecret) (empty .Values.mongo.uri) -}}
{{- fail "mongo.uri or mongo.existingSecret is required" -}}
{{- end -}}
{{- if .Values.orderCommand.autoscaling.enabled -}}
{{- if gt (int .Values.orderCommand.autoscaling.minReplicas) (int .Values.orderCommand.autoscaling.maxReplicas) -}}
{{- fail "orderCommand.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- end -}}
{{- if .Values.orderQuery.autoscaling.enabled -}}
{{- if gt (int .Values.orderQuery.autoscaling.minReplicas) (int .Values.orderQuery.autoscaling.maxReplicas) -}}
{{- fail "orderQuery.autoscaling.minReplicas must not exceed maxReplicas" -}}
{{- end -}}
{{- end -}}
{{- end -}}
