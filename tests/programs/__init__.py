"""Test programs and test cases."""
