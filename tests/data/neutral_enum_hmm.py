"""A 3-state HMM: the hidden chain enumerated under markov, the params point estimates."""

import numpy as np

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

INIT = np.array([0.6, 0.3, 0.1], np.float32)
TRANS = np.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32)
MEANS = np.array([-2.0, 0.0, 2.5], np.float32)
YS = np.array([-2.1, 0.2, 2.2, 2.9, -2.4], np.float32)
MODEL_ARGS = (YS,)


def model(ys):
    init = dg.param("init", INIT, constraint=constraints.simplex)
    trans = dg.param("trans", TRANS, constraint=constraints.simplex)
    means = dg.param("means", MEANS)
    z = None
    for t in dg.markov(range(len(ys))):
        probs = init if z is None else ops.Vindex(trans)[z, :]
        z = dg.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        dg.sample(f"y_{t}", dist.Normal(means[z], 0.7), obs=ys[t])


def guide(ys):
    pass


#: the most likely hidden path (Viterbi), with the params at their values
decoder = dg.infer_discrete(model, first_available_dim=-1, temperature=0)


FIT_SETTINGS = {
    "loss": dg.infer.TraceEnum_ELBO(max_plate_nesting=0),
    "optim": dg.optim.Adam(lr=0.02),
    "num_steps": 20,
}
