"""Backend runtime assets: what handlers, mutators and filters name in ``runtime_assets``."""

from .manager import AssetError, AssetManager, RuntimeAsset, asset_env, backend_entity, select_build

__all__ = ["AssetError", "AssetManager", "RuntimeAsset", "asset_env", "backend_entity", "select_build"]
