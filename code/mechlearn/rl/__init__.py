"""Part III, reinforcement learning (ARENA chapter 2): from bandits to PPO and RLHF.

    common           argument checks shared by every algorithm, `make_env`, recipe manifests
    bandits          the 10-armed testbed; ε-greedy, optimistic initial values, UCB, the gradient bandit
    tabular          policy evaluation, policy and value iteration, Q-learning, SARSA, Expected SARSA,
                     n-step TD and TD(λ) on gymnasium's FrozenLake and CliffWalking and a random walk
    gridworld        a small gridworld for reward shaping and specification gaming
    envs             ARENA's probe environments for debugging value and policy learning
    dqn              Q-network, replay buffer, target network, ε schedule, the DQN training loop
    policy_gradient  REINFORCE with and without a baseline
    rollout          vectorised rollouts with gymnasium.vector, bootstrapping through truncation
    ppo              GAE, the clipped objective, actor-critics and PPO's training loop
    lora             low-rank adapters: merge, unmerge, and LoRA on a GPT's weight tensors
    rlhf             a value head on the char-LM, a programmatic reward, the KL penalty, the RLHF trainer

Each algorithm is one module that reads top to bottom in the paper's order, with its
hyperparameters in one dataclass. Every public name of the submodules is re-exported here
(``from mechlearn.rl import PPOConfig``); pages import from the submodule they show. Training runs longer than a page's minute are recipes, ``python -m mechlearn.rl
RECIPE --out DIR``, whose small checkpoints and manifests ship in ``mechlearn/rl/checkpoints``.

Importing it imports torch and gymnasium.
"""

from mechlearn._optional import require

require("torch", "mechlearn.rl", extra="rl")  # before the submodules, so a missing torch names its extra
require("gymnasium", "mechlearn.rl", extra="rl")

from mechlearn.rl import (  # noqa: E402
    bandits, common, dqn, envs, gridworld, lora, policy_gradient, ppo, rlhf, rollout, tabular,
)
from mechlearn.rl.common import *  # noqa: E402,F403
from mechlearn.rl.bandits import *  # noqa: E402,F403
from mechlearn.rl.tabular import *  # noqa: E402,F403
from mechlearn.rl.gridworld import *  # noqa: E402,F403
from mechlearn.rl.envs import *  # noqa: E402,F403
from mechlearn.rl.dqn import *  # noqa: E402,F403
from mechlearn.rl.policy_gradient import *  # noqa: E402,F403
from mechlearn.rl.rollout import *  # noqa: E402,F403
from mechlearn.rl.ppo import *  # noqa: E402,F403
from mechlearn.rl.lora import *  # noqa: E402,F403
from mechlearn.rl.rlhf import *  # noqa: E402,F403

_SUBMODULES = (common, bandits, tabular, gridworld, envs, dqn, policy_gradient, rollout, ppo, lora, rlhf)
__all__ = [module.__name__.rsplit(".", 1)[1] for module in _SUBMODULES] + [
    name for module in _SUBMODULES for name in module.__all__
]
