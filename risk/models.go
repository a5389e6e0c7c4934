package risk

import (
	"gopkg.in/yaml.v3"

	"github.com/fincore/fincore/risk/model"
)

// BuildModel builds a model from its rule set entry with package model: LightGBM and XGBoost
// tree ensembles, logistic regressions and scorecards. It is the engine's default
// ModelBuilder.
func BuildModel(n *yaml.Node) (Model, error) {
	var s model.Spec
	if err := n.Decode(&s); err != nil {
		return nil, err
	}
	return model.Build(s)
}
