# Tests of the Lightning-style logging model (MetricAggregator) and the console progress bar.
accel_add_test(aggregation_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/aggregation_test.cpp
               LIBS accel_tracking)
accel_add_test(progress_bar_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/progress_bar_test.cpp
               LIBS accel_tracking)
accel_add_mpi_test(aggregation_mpi_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/aggregation_mpi_test.cpp
                   LIBS accel_tracking MPI::MPI_C NP 2 3)
