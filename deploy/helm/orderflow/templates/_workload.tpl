{{/*
A service's Deployment. Call with a dict:
  root       the top scope ($)
  component  the service's name (order-command, ...)
  values     its values (.Values.orderCommand, ...)
  env        its env list, rendered YAML
  topology   mount the topology volume
  jwks       mount the JWK Set's ConfigMap ("true" or "")
  replicas   whether spec.replicas is set (not when an HPA owns it)
*/}}
{{- define "orderflow.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "orderflow.fullname" $root }}-{{ .component }}
  labels:
    {{- include "orderflow.labels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  {{- if .replicas }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "orderflow.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "orderflow.selectorLabels" (dict "root" $root "component" .component) | nindent 8 }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      # The services drain for ORDERFLOW_SHUTDOWN_TIMEOUT (20 s) on SIGTERM.
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .component }}
          image: {{ include "orderflow.image" (dict "root" $root "image" $v.image) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            {{- range $name, $port := $v.ports }}
            - name: {{ $name }}
              containerPort: {{ $port }}
              protocol: TCP
            {{- end }}
          env:
            {{- .env | nindent 12 }}
            {{- with $v.config }}
            {{- include "orderflow.extraConfig" . | trim | nindent 12 }}
            {{- end }}
          readinessProbe:
            httpGet:
              path: {{ $v.readinessPath }}
              port: http
            periodSeconds: 5
            timeoutSeconds: 4
            failureThreshold: 3
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 6
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          {{- include "orderflow.securityContext" $root | nindent 10 }}
          {{- if or .topology .jwks }}
          volumeMounts:
            {{- if .topology }}
            - name: topology
              mountPath: {{ $root.Values.topology.mountPath }}
              readOnly: true
            {{- end }}
            {{- if .jwks }}
            - name: jwks
              mountPath: {{ $root.Values.auth.mountPath }}
              readOnly: true
            {{- end }}
          {{- end }}
      {{- if or .topology .jwks }}
      volumes:
        {{- if .topology }}
        {{- include "orderflow.topologyVolume" (dict "root" $root "name" (include "orderflow.topologyName" $root)) | nindent 8 }}
        {{- end }}
        {{- if .jwks }}
        - name: jwks
          configMap:
            name: {{ include "orderflow.jwksConfigMapName" $root }}
        {{- end }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* A service's ClusterIP Service over its named ports. */}}
{{- define "orderflow.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "orderflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "orderflow.labels" (dict "root" .root "component" .component) | nindent 4 }}
    orderflow.io/metrics: "true"
spec:
  type: ClusterIP
  selector:
    {{- include "orderflow.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    {{- range $name, $port := .values.ports }}
    - name: {{ $name }}
      port: {{ $port }}
      targetPort: {{ $name }}
      protocol: TCP
      {{- if eq $name "grpc" }}
      appProtocol: grpc
      {{- else }}
      appProtocol: http
      {{- end }}
    {{- end }}
{{- end -}}

{{/* A service's PodDisruptionBudget. */}}
{{- define "orderflow.pdb" -}}
{{- if .values.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "orderflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "orderflow.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  {{- if hasKey .values.pdb "minAvailable" }}
  minAvailable: {{ .values.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "orderflow.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* A HorizontalPodAutoscaler on CPU. */}}
{{- define "orderflow.hpa" -}}
{{- if .values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "orderflow.fullname" .root }}-{{ .component }}
  labels:
    {{- include "orderflow.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "orderflow.fullname" .root }}-{{ .component }}
  minReplicas: {{ .values.autoscaling.minReplicas }}
  maxReplicas: {{ .values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .values.autoscaling.targetCPUUtilizationPercentage }}
  behavior:
    # Peaks rise within minutes (lunch, dinner): scale up at once, down slowly.
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - type: Percent
          value: 100
          periodSeconds: 30
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - type: Percent
          value: 20
          periodSeconds: 60
{{- end }}
{{- end -}}
