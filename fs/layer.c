/* placeholder: replaced by the engine */
typedef int jfs_placeholder_layer;
