# SPDX-License-Identifier: MIT
"""Flows: scenarios that are more than boots one after another (they talk to the server VM in
between, or keep a node running while others boot). Each is a function (runner, scenario) ->
[(node, report), ...], named by its scenario's `flow`."""
