// Everything is static inline in include/CAtomics.h; SwiftPM needs one source file.
#include "CAtomics.h"
