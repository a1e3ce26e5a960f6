// OpenMPI exposes its handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) as macros
// that expand to addresses of global structs; Swift cannot import those, so each
// one is wrapped in a static inline getter. No stable Swift API: only ChorusMPI
// imports this module.
#ifndef CHORUS_CMPI_SHIM_H
#define CHORUS_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm chorus_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm chorus_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype chorus_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype chorus_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype chorus_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype chorus_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype chorus_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Datatype chorus_uint16(void) { return MPI_UINT16_T; }
static inline MPI_Datatype chorus_byte(void) { return MPI_BYTE; }
static inline MPI_Op chorus_op_sum(void) { return MPI_SUM; }
static inline MPI_Op chorus_op_max(void) { return MPI_MAX; }
static inline MPI_Op chorus_op_min(void) { return MPI_MIN; }
static inline MPI_Request chorus_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *chorus_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *chorus_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline int chorus_status_source(const MPI_Status *status) { return status->MPI_SOURCE; }
static inline int chorus_status_tag(const MPI_Status *status) { return status->MPI_TAG; }
static inline int chorus_proc_null(void) { return MPI_PROC_NULL; }
static inline MPI_Errhandler chorus_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int chorus_any_source(void) { return MPI_ANY_SOURCE; }
static inline int chorus_any_tag(void) { return MPI_ANY_TAG; }
static inline int chorus_undefined(void) { return MPI_UNDEFINED; }
static inline int chorus_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int chorus_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int chorus_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int chorus_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int chorus_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int chorus_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int chorus_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int chorus_success(void) { return MPI_SUCCESS; }
static inline void *chorus_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Info chorus_info_null(void) { return MPI_INFO_NULL; }
#endif
