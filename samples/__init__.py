"""Runnable sample servers on the reference reducer-server runtime, traffic generators for them,
and planted-bug variants for demos and tests.

``samples.sales_order:reducer`` and ``samples.shopping_list:reducer`` are importable for replay.
"""
