"""What methods and tasks may build with (besides the contracts forgetbench.method and forgetbench.task): loading
models, encoding examples, the training loop, generation, losses and verifiers. Imports only forgetbench.core."""
