package model

import (
	"math"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSpecFromYAML: a rule set's models: entries decode into Spec with yaml.v3, as the risk
// engine decodes them.
func TestSpecFromYAML(t *testing.T) {
	const doc = `
- id: fraud_lr
  type: logistic
  logistic:
    intercept: -3
    weights: {txn_count_1h: 0.4, amount_cny: 0.0001}
- id: card
  type: scorecard
  inputs: [age, device]
  scorecard:
    base: 600
    features:
      - input: age
        missing: -10
        bins:
          - {max: 25, points: -20}
          - {min: 25, points: 15}
      - input: device
        default: 0
        bins:
          - {values: [3, 4], points: -50}
- id: gbm
  type: lightgbm
  inputs: [x]
  source: |
    tree
    version=v3
    num_class=1
    num_tree_per_iteration=1
    max_feature_idx=0
    objective=binary sigmoid:1

    Tree=0
    num_leaves=2
    split_feature=0
    threshold=1.5
    decision_type=10
    left_child=-1
    right_child=-2
    leaf_value=-1 1

    end of trees
`
	var specs []Spec
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 {
		t.Fatalf("%d specs", len(specs))
	}
	lr := mustBuild(t, specs[0])
	if got, want := lr.Predict([]float64{10000, 5}), 1/(1+math.Exp(-(-3+1+2.0))); math.Abs(got-want) > 1e-15 {
		t.Fatalf("logistic %v, want %v", got, want)
	}
	card := mustBuild(t, specs[1])
	if got := card.Predict([]float64{30, 4}); got != 600+15-50 {
		t.Fatalf("scorecard %v", got)
	}
	if got := card.Predict([]float64{nan, 1}); got != 600-10+0 {
		t.Fatalf("scorecard with missing age %v", got)
	}
	gbm := mustBuild(t, specs[2])
	if got, want := gbm.Predict([]float64{nan}), 1/(1+math.Exp(1)); got != want { // NaN goes left: -1
		t.Fatalf("lightgbm %v, want %v", got, want)
	}
}
