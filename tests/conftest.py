import pytest
from helpers import make_pairs


@pytest.fixture
def pairs():
    return make_pairs()
