package deploy_test

// Offline checks of what ships a household (one exporter, several accounts, one /probe target
// each): the example config file, the Prometheus scrape config with its relabelling, the
// compose override files and the Kubernetes overlay with its ScrapeConfig. The config files are
// read with the exporter's own strict parser, so an example that the exporter would refuse
// fails here.

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/config"
)

const (
	householdConfig       = "household/household.yml"
	householdCompose      = "docker-compose.household.yml"
	householdComposeCreds = "docker-compose.household-credentials.yml"
	prometheusHousehold   = "prometheus/prometheus-household.yml"
	householdKustomize    = "kubernetes-household"
	householdScrapeConfig = "kubernetes-household/scrapeconfig.yaml"
	householdSecret       = "kubernetes-household/secret.example.yaml"

	householdMemoryLimit = "160Mi" // the overlay's, for up to twenty accounts

	householdConfigPath = "/etc/peloton_exporter/household.yml" // where the exporter reads it
	exporterAddress     = "peloton-exporter:10070"              // the compose service, the Kubernetes Service
)

// parseHousehold reads a household config as the exporter would, without reading its secrets.
func parseHousehold(t *testing.T, name string, data []byte) *config.Config {
	t.Helper()
	c, err := config.Parse(data, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%s: the exporter would refuse it: %v", name, err)
	}
	return c
}

func accountNames(c *config.Config) []string {
	var out []string
	for _, a := range c.Accounts {
		out = append(out, a.Name)
	}
	return out
}

// secretFiles are the files an account's secrets are read from.
func secretFiles(c *config.Config) []string {
	var out []string
	for _, a := range c.Accounts {
		for _, s := range []config.Secret{a.Password, a.RefreshToken, a.AccessToken} {
			if s.File != "" {
				out = append(out, s.File)
			}
		}
	}
	return out
}

// relabelStep is a relabel rule, in Prometheus' (snake_case) or the Operator's (camelCase) spelling.
type relabelStep struct {
	SourceLabels  []string `yaml:"source_labels"`
	SourceLabels2 []string `yaml:"sourceLabels"`
	TargetLabel   string   `yaml:"target_label"`
	TargetLabel2  string   `yaml:"targetLabel"`
	Replacement   *string  `yaml:"replacement"`
	Action        string   `yaml:"action"`
	Regex         string   `yaml:"regex"`
}

// checkProbeRelabelling requires the multi-target chain: the target becomes the target
// parameter, the parameter the instance label, and the exporter the address; nothing else.
func checkProbeRelabelling(t *testing.T, where string, steps []relabelStep) {
	t.Helper()
	type step struct{ from, to, replacement string }
	var got []step
	for _, s := range steps {
		from := strings.Join(append(s.SourceLabels, s.SourceLabels2...), ",")
		r := ""
		if s.Replacement != nil {
			r = *s.Replacement
		}
		if (s.Action != "" && s.Action != "replace") || s.Regex != "" {
			t.Errorf("%s: relabel rule %+v: want plain replace rules", where, s)
		}
		got = append(got, step{from, s.TargetLabel + s.TargetLabel2, r})
	}
	want := []step{{"__address__", "__param_target", ""}, {"__param_target", "instance", ""}, {"", "__address__", exporterAddress}}
	if !slices.Equal(got, want) {
		t.Errorf("%s: relabelling %+v, want %+v (target → ?target=, target → instance, address → the exporter)", where, got, want)
	}
}

func TestHouseholdExampleConfig(t *testing.T) {
	c := parseHousehold(t, householdConfig, readFiles(t, householdConfig)[householdConfig])
	if len(c.Accounts) < 2 {
		t.Errorf("%s: want an example with at least two accounts, got %v", householdConfig, accountNames(c))
	}
	for _, f := range secretFiles(c) {
		if !strings.HasPrefix(f, "/run/secrets/") {
			t.Errorf("%s names %s: compose mounts secrets in /run/secrets", householdConfig, f)
		}
	}
}

func TestPrometheusHouseholdConfig(t *testing.T) {
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName        string                       `yaml:"job_name"`
			MetricsPath    string                       `yaml:"metrics_path"`
			StaticConfigs  []struct{ Targets []string } `yaml:"static_configs"`
			RelabelConfigs []relabelStep                `yaml:"relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAMLLoose(t, prometheusHousehold, &prom)
	names := accountNames(parseHousehold(t, householdConfig, readFiles(t, householdConfig)[householdConfig]))
	if !slices.Contains(prom.RuleFiles, path.Base(rulesFile)) {
		t.Errorf("%s does not load %s", prometheusHousehold, rulesFile)
	}
	var probes, own int
	for _, sc := range prom.ScrapeConfigs {
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		switch {
		case sc.MetricsPath == "/probe":
			probes++
			if !strings.HasPrefix(sc.JobName, "peloton") {
				t.Errorf("%s: the probe job %s: the alerting rules expect a job starting with peloton", prometheusHousehold, sc.JobName)
			}
			if !slices.Equal(targets, names) {
				t.Errorf("%s: the probe job scrapes %v, the example config's accounts are %v", prometheusHousehold, targets, names)
			}
			checkProbeRelabelling(t, prometheusHousehold, sc.RelabelConfigs)
		case slices.Contains(targets, exporterAddress):
			own++ // the exporter's own /metrics: up, build info, peloton_account_up
			if !strings.HasPrefix(sc.JobName, "peloton") {
				t.Errorf("%s: job %s: PelotonExporterDown watches up{job=~\"peloton.*\"}", prometheusHousehold, sc.JobName)
			}
		}
	}
	if probes != 1 || own != 1 {
		t.Errorf("%s: %d /probe jobs and %d jobs of the exporter's own metrics, want one of each", prometheusHousehold, probes, own)
	}
}

func TestComposeHouseholdConfig(t *testing.T) {
	compose := composeCommand(t)
	readFiles(t, composeFile, householdCompose, householdComposeCreds, "household", "prometheus")
	for _, files := range [][]string{{composeFile, householdCompose}, {composeFile, householdCompose, householdComposeCreds}} {
		args := append(compose[1:], "--project-directory", ".")
		for _, f := range files {
			args = append(args, "-f", f)
		}
		run(t, compose[0], append(args, "config", "-q")...)
	}
}

func TestComposeHousehold(t *testing.T) {
	type service struct {
		Command []string `yaml:"command"`
		Volumes []string `yaml:"volumes"`
		Secrets []string `yaml:"secrets"`
		EnvFile []string `yaml:"env_file"`
	}
	var household, creds struct {
		Services map[string]service               `yaml:"services"`
		Secrets  map[string]struct{ File string } `yaml:"secrets"`
	}
	readYAMLLoose(t, householdCompose, &household)
	readYAMLLoose(t, householdComposeCreds, &creds)
	c := parseHousehold(t, householdConfig, readFiles(t, householdConfig)[householdConfig])

	// The demo household: the example config, mounted where the command reads it.
	exp := household.Services["peloton-exporter"]
	if !slices.Equal(exp.Command, []string{"--demo", "--config.file=" + householdConfigPath}) {
		t.Errorf("%s: command %q, want the demo of the household config", householdCompose, exp.Command)
	}
	if !slices.Contains(exp.Volumes, "./"+householdConfig+":"+householdConfigPath+":ro") {
		t.Errorf("%s: want ./%s mounted read-only on %s, got %q", householdCompose, householdConfig, householdConfigPath, exp.Volumes)
	}
	if prom := household.Services["prometheus"].Command; !slices.Contains(prom, "--config.file=/etc/prometheus/"+path.Base(prometheusHousehold)) {
		t.Errorf("%s: Prometheus runs %q, want %s", householdCompose, prom, prometheusHousehold)
	}
	if len(exp.EnvFile) != 0 {
		t.Errorf("%s: the household reads no env file", householdCompose)
	}
	if prom := household.Services["prometheus"].Command; !slices.ContainsFunc(prom, func(a string) bool { return strings.HasPrefix(a, "--storage.tsdb.retention.time=") }) {
		t.Errorf("%s: Prometheus runs %q: keep --storage.tsdb.retention.time, or the backfilled years are deleted after 15 days", householdCompose, prom)
	}
	// Its backfill: every rider of the same config, a file each, once, never the base file's
	// single simulated member (a phantom rider).
	bf := household.Services["backfill"]
	for _, want := range []string{"--demo", "--config.file=" + householdConfigPath, "--output=/backfill", "--best-effort", "--skip-if-exists=/prometheus/peloton-backfill.done"} {
		if !slices.Contains(bf.Command, want) || slices.ContainsFunc(bf.Command, func(a string) bool { return strings.HasPrefix(a, "--label=instance=") }) {
			t.Errorf("%s: backfill command %q, want %s and no instance label (each rider's name is its own)", householdCompose, bf.Command, want)
		}
	}
	if !slices.Contains(bf.Volumes, "./"+householdConfig+":"+householdConfigPath+":ro") {
		t.Errorf("%s: the backfill must read the household config, mounted as the exporter's (%q)", householdCompose, bf.Volumes)
	}

	// Your household: no demo, the state volume, and every secret file the config names
	// mounted from household/secrets/ at that path.
	real := creds.Services["peloton-exporter"]
	if len(creds.Services) != 2 || slices.Contains(real.Command, "--demo") ||
		!slices.Equal(real.Command, []string{"--config.file=" + householdConfigPath, "--peloton.state-dir=" + stateDir}) {
		t.Errorf("%s: command %q, want the config file and --peloton.state-dir=%s, no --demo", householdComposeCreds, real.Command, stateDir)
	}
	realBackfill := creds.Services["backfill"]
	if slices.Contains(realBackfill.Command, "--demo") || !slices.Contains(realBackfill.Command, "--peloton.state-dir="+stateDir) ||
		!slices.Contains(realBackfill.Command, "--config.file="+householdConfigPath) || !slices.Equal(realBackfill.Secrets, real.Secrets) {
		t.Errorf("%s: backfill command %q with secrets %q, want the config file, --peloton.state-dir=%s, no --demo, and the exporter's secrets",
			householdComposeCreds, realBackfill.Command, realBackfill.Secrets, stateDir)
	}
	var mounted []string
	for _, name := range real.Secrets {
		s, ok := creds.Secrets[name]
		if !ok || s.File != "./household/secrets/"+name {
			t.Errorf("%s: secret %s comes from %q, want ./household/secrets/%s", householdComposeCreds, name, s.File, name)
		}
		mounted = append(mounted, "/run/secrets/"+name)
	}
	for _, f := range secretFiles(c) {
		if !slices.Contains(mounted, f) {
			t.Errorf("%s names %s, which %s does not mount (it mounts %v)", householdConfig, f, householdComposeCreds, mounted)
		}
	}
	if !slices.Contains(strings.Fields(string(readFiles(t, deployGitignore)[deployGitignore])), "/household/secrets/") {
		t.Errorf("%s must ignore /household/secrets/", deployGitignore)
	}
}

func TestKustomizeBuildHousehold(t *testing.T) {
	goTool := tool(t, "go", "golang-go")
	readFiles(t, kustomizeDir, householdKustomize)
	objects := decodeManifests(t, []byte(run(t, goTool, "run", kustomizeModule+"@"+kustomizeVersion, "build", householdKustomize)))
	byKind := map[string][]k8sObject{}
	for _, o := range objects {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for kind, n := range map[string]int{"Deployment": 1, "Service": 1, "PersistentVolumeClaim": 1, "ServiceMonitor": 1, "PrometheusRule": 1, "ConfigMap": 1, "ScrapeConfig": 1, "Secret": 0} {
		if len(byKind[kind]) != n {
			t.Fatalf("rendered %d %s, want %d", len(byKind[kind]), kind, n)
		}
	}

	// The Deployment: the base's security settings, the config file's accounts instead of the
	// credentials Secret's single account, the household Secret mounted where the file says.
	var d deployment
	byKind["Deployment"][0].decodeAs(t, &d)
	var mounts struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
							ReadOnly  bool   `yaml:"readOnly"`
						} `yaml:"volumeMounts"`
					}
					Volumes []struct {
						Name   string
						Secret *struct {
							SecretName  string `yaml:"secretName"`
							DefaultMode int    `yaml:"defaultMode"`
						}
					}
				}
			}
		}
	}
	byKind["Deployment"][0].decodeAs(t, &mounts)
	c := d.Spec.Template.Spec.Containers[0]
	if want := []string{"--config.file=" + householdConfigPath, "--peloton.state-dir=" + stateDir}; !slices.Equal(c.Args, want) {
		t.Errorf("container args %q, want %q", c.Args, want)
	}
	if len(c.Env) != 0 {
		t.Errorf("the household's container reads credentials from the environment too: %+v", c.Env)
	}
	// Twenty accounts need 20 MiB + 3 MiB each and the garbage collector's headroom: not the
	// single account's limit.
	if got := c.Resources.Limits["memory"]; got != householdMemoryLimit {
		t.Errorf("container memory limit %q, want %s for up to twenty accounts", got, householdMemoryLimit)
	}
	sc := c.SecurityContext
	if sc == nil || !isTrue(sc.ReadOnlyRootFilesystem) || !isTrue(sc.RunAsNonRoot) || d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("the overlay lost the base's settings: %s, replicas %v", show(sc), d.Spec.Replicas)
	}
	configDir, volume := "", ""
	for _, m := range mounts.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.MountPath == path.Dir(householdConfigPath) {
			configDir, volume = m.MountPath, m.Name
			if !m.ReadOnly {
				t.Errorf("%s is mounted writable", m.MountPath)
			}
		}
	}
	secretName := ""
	for _, v := range mounts.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.Secret != nil {
			secretName = v.Secret.SecretName
			if v.Secret.DefaultMode != 0o440 {
				t.Errorf("the household Secret's files have mode %#o, want 0440 (the pod's group only)", v.Secret.DefaultMode)
			}
		}
	}
	if configDir == "" || secretName == "" {
		t.Fatalf("no Secret volume on %s", path.Dir(householdConfigPath))
	}

	// The example Secret: its household.yml is a config file the exporter takes, and every
	// secret file it names is a key of the same Secret, in the mounted directory.
	var secret k8sObject
	readYAMLLoose(t, householdSecret, &secret)
	if secret.Kind != "Secret" || secret.Metadata.Name != secretName {
		t.Errorf("%s: want the Secret %s the Deployment mounts", householdSecret, secretName)
	}
	file, ok := secret.StringData[path.Base(householdConfigPath)]
	if !ok {
		t.Fatalf("%s has no key %s", householdSecret, path.Base(householdConfigPath))
	}
	c2 := parseHousehold(t, householdSecret, []byte(file))
	for _, f := range secretFiles(c2) {
		key := strings.TrimPrefix(f, configDir+"/")
		if path.Dir(f) != configDir || secret.StringData[key] == "" {
			t.Errorf("%s: %s names %s, which is no key of the Secret in %s", householdSecret, path.Base(householdConfigPath), f, configDir)
		}
		if v := secret.StringData[key]; v != "" && !strings.Contains(v, "CHANGE-ME") {
			t.Errorf("%s: %s = %q is not an obvious placeholder", householdSecret, key, v)
		}
	}

	// The ScrapeConfig: the Operator's CRD, /probe per account of the Secret's config file,
	// relabelled so that each account is an instance of a peloton… job, at the Service.
	var scfg struct {
		Spec struct {
			JobName       string                       `yaml:"jobName"`
			MetricsPath   string                       `yaml:"metricsPath"`
			StaticConfigs []struct{ Targets []string } `yaml:"staticConfigs"`
			Relabelings   []relabelStep                `yaml:"relabelings"`
		}
	}
	obj := byKind["ScrapeConfig"][0]
	obj.decodeAs(t, &scfg)
	if obj.APIVersion != "monitoring.coreos.com/v1alpha1" {
		t.Errorf("ScrapeConfig apiVersion %s", obj.APIVersion)
	}
	if scfg.Spec.MetricsPath != "/probe" || !strings.HasPrefix(scfg.Spec.JobName, "peloton") {
		t.Errorf("ScrapeConfig: path %s, job %s; want /probe and a job starting with peloton", scfg.Spec.MetricsPath, scfg.Spec.JobName)
	}
	var targets []string
	for _, st := range scfg.Spec.StaticConfigs {
		targets = append(targets, st.Targets...)
	}
	if names := accountNames(c2); !slices.Equal(targets, names) {
		t.Errorf("ScrapeConfig targets %v, the Secret's accounts %v", targets, names)
	}
	checkProbeRelabelling(t, householdScrapeConfig, scfg.Spec.Relabelings)
	svc := byKind["Service"][0]
	if want := fmt.Sprintf("%s:%d", svc.Metadata.Name, exporterPort); want != exporterAddress {
		t.Errorf("the Service is %s, the ScrapeConfig scrapes %s", want, exporterAddress)
	}
	if regexp.MustCompile(`(?m)^\s*-\s*secret\.example\.yaml`).Match(readFiles(t, householdKustomize+"/kustomization.yaml")[householdKustomize+"/kustomization.yaml"]) {
		t.Error("the example Secret is part of the kustomization: its placeholders would be applied")
	}
}

// The dashboard's Household row says what its panels show: a title that names a unit of time
// is shown in that unit.
func TestHouseholdPanelsShowTheUnitTheirTitleNames(t *testing.T) {
	var d struct {
		Panels []struct {
			Title       string
			FieldConfig struct {
				Defaults struct{ Unit string }
			} `json:"fieldConfig"`
		}
	}
	if err := json.Unmarshal(readFiles(t, dashboardFile)[dashboardFile], &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range d.Panels {
		if !strings.HasPrefix(p.Title, "Household: ") {
			continue
		}
		n++
		for word, unit := range map[string]string{"seconds": "s", "minutes": "m", "hours": "h"} {
			if strings.Contains(p.Title, word) && p.FieldConfig.Defaults.Unit != unit {
				t.Errorf("panel %q shows unit %q, want %q", p.Title, p.FieldConfig.Defaults.Unit, unit)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d Household panels, want workouts, time and output", n)
	}
}
