"""Quality figures on the shared data; every module here carries ``EVAL_MARKS``."""

import pytest

# the first test of a module may also index a whole corpus (minutes of embedding on two cores)
EVAL_MARKS = [
    pytest.mark.eval,
    pytest.mark.shared_data,
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.timeout(2400),
]
