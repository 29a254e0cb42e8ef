"""services.parallel: results and errors come back in the order of the input."""

from __future__ import annotations

import pytest

from openline.services import parallel


@pytest.mark.parametrize("n", [0, 1, 3, 7, 50, 51])
def test_map_in_order_keeps_order_and_errors_in_place(n: int) -> None:
    def fn(x: int) -> int:
        if x % 5 == 3:
            raise ValueError(f"bad {x}")
        return x * x

    results = parallel.map_in_order(fn, list(range(n)))
    assert len(results) == n
    for x, result in enumerate(results):
        if x % 5 == 3:
            assert isinstance(result, ValueError)
            assert str(result) == f"bad {x}"
        else:
            assert result == x * x
