// zlib's gz* API reads gzip and plain files alike. Only Datasets imports this module.
#ifndef CHORUS_CZLIB_SHIM_H
#define CHORUS_CZLIB_SHIM_H
#include <zlib.h>
#endif
