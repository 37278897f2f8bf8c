"""Part III, reinforcement learning (ARENA chapter 2): from bandits to PPO and RLHF.

    common           argument checks shared by every algorithm, `make_env`, recipe manifests
    bandits          the 10-armed testbed; ε-greedy, optimistic initial values, UCB, the gradient bandit
    tabular          policy evaluation, policy and value iteration, Q-learning, SARSA, Expected SARSA,
                     n-step TD and TD(λ) on gymnasium's FrozenLake and CliffWalking and a random walk
    gridworld        a small gridworld for reward shaping and specification gaming
    envs             ARENA's probe environments for debugging value and policy learning
    dqn              Q-network, replay buffer, target network, ε schedule, the DQN training loop
    policy_gradient  REINFORCE with and without a baseline
    ppo              vectorised rollouts, GAE, the clipped objective and PPO's training loop
    rlhf             a value head on the char-LM, a programmatic reward, the KL penalty, LoRA

Each algorithm is one module that reads top to bottom in the paper's order, with its
hyperparameters in one dataclass. Import the submodule you need (``from mechlearn.rl.ppo import
PPOConfig``). Training runs longer than a page's minute are recipes, ``python -m mechlearn.rl
RECIPE --out DIR``, whose small checkpoints and manifests ship in ``mechlearn/rl/checkpoints``.

Importing it imports torch and gymnasium.
"""

from mechlearn._optional import require

require("torch", "mechlearn.rl", extra="rl")  # before the submodules, so a missing torch names its extra
require("gymnasium", "mechlearn.rl", extra="rl")

from mechlearn.rl import bandits, common, dqn, envs, gridworld, policy_gradient, ppo, rlhf, tabular  # noqa: E402

__all__ = ["bandits", "common", "dqn", "envs", "gridworld", "policy_gradient", "ppo", "rlhf", "tabular"]
